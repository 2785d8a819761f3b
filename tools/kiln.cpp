// The `kiln` command: registers the subcommands of tools/commands.def and
// turns every failure into a message on stderr and exit status 1 (2 for a
// malformed command line), never an uncaught exception.
#include "ir/error.h"
#include "tools/commands.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdio>
#include <new>
#include <string>
#include <string_view>
#include <vector>

namespace {

void report(std::string_view msg) {
  // Messages that carry their own `FILE:LINE:COL: error:` prefix are shown
  // as they are; the others get the plain `error:` prefix.
  if (msg.find(": error: ") != std::string_view::npos)
    fmt::print(stderr, "{}\n", msg);
  else
    fmt::print(stderr, "error: {}\n", msg);
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"kiln: a graph-compiling deep-learning framework"};
  app.require_subcommand(1);
#define KILN_COMMAND(name) kiln::add_##name##_command(app);
#include "tools/commands.def"
#undef KILN_COMMAND
  app.set_version_flag("--version", std::string("kiln ") + KILN_VERSION);
  // CLI11 says only "A subcommand is required" for `kiln frob`: name it.
  if (argc > 1 && argv[1][0] != '-') {
    std::vector<std::string> known;
    for (const CLI::App *sub : app.get_subcommands({}))
      known.push_back(sub->get_name());
    if (std::find(known.begin(), known.end(), argv[1]) == known.end()) {
      report(fmt::format("unknown command '{}' (known commands: {})", argv[1],
                         fmt::join(known, ", ")));
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const kiln::Error &e) {
    report(e.what());
    return 1;
  } catch (const std::bad_alloc &) {
    report("out of memory");
    return 1;
  } catch (const std::exception &e) {
    report(fmt::format("internal error: {}", e.what()));
    return 1;
  }
  // A full disk or closed pipe must not pass for success.
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    report("cannot write to stdout");
    return 1;
  }
  return 0;
}
