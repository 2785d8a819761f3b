// `kiln bench`: runs the benchmark binary (bench/kiln_bench, built with the
// CPU backend) from the same build, passing the arguments on. It prints
// markdown tables: fused vs unfused elementwise kernels and optimizer
// update against a hand-written loop and LibTorch, the MLP training step
// against LibTorch, its compile time, and compile time against MLP depth
// (see BENCHMARKS.md). `kiln bench --compile-depth 2,8,32,128` prints only
// the last table; `kiln bench --cnn` only the CNN step and conv2d alone
// against LibTorch and oneDNN.
#include "ir/error.h"
#include "tools/commands.h"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <unistd.h>

namespace kiln {

void add_bench_command(CLI::App &app) {
  CLI::App *cmd = app.add_subcommand(
      "bench", "kernel fusion and training-step benchmarks (markdown tables)");
  // Every argument goes to kiln_bench as it is, with or without a `--`.
  cmd->prefix_command();
  // --help, too, goes to kiln_bench, which lists its options.
  cmd->set_help_flag();
  cmd->footer("Arguments are passed to kiln_bench: --sizes N,M --reps N "
              "--depths L,L (or --compile-depth L,L for the compile-time "
              "table alone, --cnn [--rounds R] for the CNN step and conv2d "
              "tables alone)");
  cmd->callback([cmd] {
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    auto bench = self.parent_path().parent_path() / "bench" / "kiln_bench";
    if (ec || !std::filesystem::exists(bench))
      fail("{} was not built (it needs the CPU backend: LLVM and OpenBLAS); "
           "build the release preset with `bash tools/build.sh`",
           bench.string());
    std::vector<char *> argv;
    std::string path = bench.string();
    argv.push_back(path.data());
    std::vector<std::string> rest = cmd->remaining();
    for (std::string &a : rest)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    std::fflush(stdout);
    execv(path.c_str(), argv.data());
    fail("cannot run {}: {}", path, std::strerror(errno));
  });
}

} // namespace kiln
