// `kiln bench`: runs the benchmark binary (bench/kiln_bench, built with the
// CPU backend) from the same build, passing the arguments on. It prints
// markdown tables: fused vs unfused elementwise kernels and optimizer
// update against a hand-written loop and LibTorch, the MLP training step
// against LibTorch, and compile times (see BENCHMARKS.md).
#include "ir/error.h"
#include "tools/commands.h"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <unistd.h>

namespace kiln {

void add_bench_command(CLI::App &app) {
  auto args = std::make_shared<std::vector<std::string>>();
  CLI::App *cmd = app.add_subcommand(
      "bench", "kernel fusion and training-step benchmarks (markdown tables)");
  cmd->add_option("args", *args, "passed to kiln_bench: --sizes N,M --reps N");
  cmd->callback([args] {
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
    for (std::string &a : *args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    std::fflush(stdout);
    execv(path.c_str(), argv.data());
    fail("cannot run {}: {}", path, std::strerror(errno));
  });
}

} // namespace kiln
