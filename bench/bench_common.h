// Shared by the benchmarks: timing (median and p90 of many runs after a
// warm-up) and the LibTorch peer's results. The peer (bench/torch_peer.cpp,
// built only when LibTorch is found) runs as a separate process so that kiln
// never links LibTorch; it prints "name\tmedian_ms\tp90_ms\tsetting" lines.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace kiln {

struct Timing {
  double median, p90; // ms
};

Timing time_ms(const std::function<void()> &f, int warmup, int iters);

struct PeerResult {
  std::string name, setting;
  double median, p90;
};

struct PeerResults {
  std::vector<PeerResult> rows;
  std::string why_missing; // non-empty when the peer did not run
  // The row of this name with the lowest median (LibTorch at its fastest
  // thread setting), or nullptr.
  const PeerResult *best(const std::string &name) const;
};

// Runs the program `binary` next to this executable with `args` (a shell
// word list) and reads its lines, or returns why it could not (`missing`
// when it was not built).
PeerResults run_peer(const std::string &binary, const std::string &args,
                     const std::string &missing);
// kiln_torch_peer with `iters` and a section: "mlp" (the MLP step, chain,
// SGD), "cnn" (the CNN step and conv2d alone), "cnn-step" or "conv".
PeerResults run_torch_peer(int iters, const std::string &section = "mlp");

void bench_train_step(const PeerResults &peer, int iters);
// `kiln bench --cnn` (bench/bench_cnn.cpp): the CNN step and conv2d alone
// against LibTorch and oneDNN, the latter in `rounds` alternating rounds.
void bench_cnn(int iters, int rounds);

// Compile time against MLP depth (bench/bench_compile.cpp).
struct CompileDepthRow {
  int depth = 0;
  int64_t nodes = 0;                   // nodes of the traced step graph
  double trace_ms = 0, compile_ms = 0; // compile_ms: compile + first step
  double loss = 0;
};
CompileDepthRow measure_compile_depth(int depth);
// Prints the table, each depth measured in a child process.
void bench_compile_depth(const std::vector<int> &depths);
// The child's side: measures one depth and prints one line for the parent.
int compile_depth_one(int depth);

} // namespace kiln
