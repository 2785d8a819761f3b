// `kiln opt FILE.kir|- [--passes=a,b,c] [--dot] [-o OUT]`: parse, verify,
// run the named passes and print the result (the tool the IR text tests
// drive); `--dot` prints it as Graphviz DOT instead (tools/dot.h). The graph
// is verified after every pass (--verify-each, on by default in every build
// type: it costs little next to the passes, and a pass that breaks the graph
// is then named); --no-verify-each shows what a broken pass produced.
#include "ir/error.h"
#include "ir/printer.h"
#include "passes/pass.h"
#include "tools/commands.h"
#include "tools/dot.h"
#include "tools/ir_file.h"
#include "tools/pipeline.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <fstream>
#include <memory>

namespace kiln {

namespace {

struct OptArgs {
  std::string input;
  std::string passes;
  std::string output;
  bool list = false;
  PassOptions pm = [] {
    PassOptions o;
    o.verify_each = true;
    return o;
  }();
  std::string print_after;
  bool dot = false;
};

void run_opt(const OptArgs &a) {
  if (a.list) {
    for (const PassInfo &p : all_passes())
      fmt::print("{:<20} {}\n", p.name, p.summary);
    return;
  }
  if (a.input.empty())
    fail("opt needs an input file (or '-' for stdin)");
  auto g = load_graph(a.input);
  PassOptions pm = a.pm;
  pm.print_after = split_pass_list(a.print_after);
  std::string text = run_pipeline(*g, split_pass_list(a.passes), pm);
  write_output(a.output, a.dot ? graph_to_dot(*g) : text);
}

} // namespace

void add_opt_command(CLI::App &app) {
  auto args = std::make_shared<OptArgs>();
  CLI::App *cmd = app.add_subcommand(
      "opt", "run passes on textual IR (.kir) and print the result");
  cmd->add_option("input", args->input, "the .kir file, '-' for stdin");
  cmd->add_option("--passes", args->passes,
                  "comma-separated passes to run in order, e.g. autodiff");
  cmd->add_option("-o,--output", args->output, "write here, not to stdout");
  cmd->add_flag("--dot", args->dot,
                "print the result as Graphviz DOT (pipe to `dot -Tsvg`)");
  cmd->add_flag("--list-passes", args->list, "list the known passes");
  cmd->add_flag("--print-after-all", args->pm.print_after_all,
                "print the IR to stderr after every pass");
  cmd->add_option("--print-after", args->print_after,
                  "print the IR to stderr after these passes (a,b)");
  cmd->add_flag("--print-after-change", args->pm.print_after_change,
                "print only after passes that changed the IR");
  cmd->add_flag("--verify-each,!--no-verify-each", args->pm.verify_each,
                "verify the graph after every pass, naming the pass that "
                "broke it (default: on)");
  cmd->add_flag("--pass-timing", args->pm.pass_timing,
                "a table of pass times on stderr");
  cmd->add_option("--dump-dir", args->pm.dump_dir,
                  "write the IR after each stage to DIR/000-GRAPH/NN-pass.kir "
                  "(also KILN_DUMP=DIR)");
  cmd->callback([args] { run_opt(*args); });
}

} // namespace kiln
