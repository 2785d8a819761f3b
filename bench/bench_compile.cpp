// Compile time against model depth: an MLP of L hidden layers of width 256
// (784 -> 256 x L -> 10, ReLU), batch 64, cross-entropy, SGD with momentum
// 0.9 and weight decay 5e-4, compiled with compile_train_step on the CPU
// backend. "compile + first step" is what a user waits for before training
// starts: trace (forward, autodiff, optimizer), the default pipeline, LLVM
// code generation and JIT, and the first step. Each depth runs in a fresh
// process (this binary re-run with --compile-depth-one L), so no depth
// finds kernels that a smaller one compiled in the per-process kernel cache.
// The growth from row to row shows whether compile time stays near-linear in
// depth (it was quadratic: 154 s at L = 128 before issue 15).
#include "bench/bench_common.h"
#include "frontend/compile.h"
#include "frontend/loss.h"
#include "frontend/models.h"
#include "frontend/optim.h"
#include "frontend/random.h"
#include "frontend/trace.h"
#include "ir/error.h"
#include "runtime/cpu_backend.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

namespace kiln {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

} // namespace

CompileDepthRow measure_compile_depth(int depth) {
  set_default_backend(make_cpu_backend());
  manual_seed(0);
  MlpOptions mo;
  mo.hidden.assign(static_cast<size_t>(depth), 256);
  auto model = make_mlp(mo);
  optim::SGD opt(
      model->parameters(),
      optim::SGDOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4});
  const int64_t batch = 64;
  Array x({DType::f32, {batch, 784}}), y({DType::i32, {batch}});
  for (int64_t i = 0; i < x.numel(); ++i)
    x.set(i, std::sin(0.37 * static_cast<double>(i)));
  for (int64_t i = 0; i < batch; ++i)
    y.set(i, static_cast<double>(i % 10));
  CompileDepthRow row;
  row.depth = depth;
  auto t0 = Clock::now();
  Program traced = trace_train_step(*model, nn::cross_entropy, &opt, x.type(),
                                    y.type(), TraceStage::step);
  row.trace_ms = ms_since(t0);
  row.nodes = static_cast<int64_t>(traced.graph().nodes().size());
  t0 = Clock::now();
  TrainStep step =
      compile_train_step(*model, nn::cross_entropy, opt, x.type(), y.type());
  row.loss = step(x, y);
  row.compile_ms = ms_since(t0);
  return row;
}

void bench_compile_depth(const std::vector<int> &depths) {
  std::printf("\n### Compile time against depth (MLP 784-256xL-10, batch 64, "
              "SGD momentum, CPU backend)\n\n");
  std::printf(
      "Each depth in a fresh process (cold kernel cache). compile + "
      "first step = trace + passes + LLVM codegen + JIT + one step.\n\n");
  std::printf("| L | step graph nodes | trace (ms) | compile + first step "
              "(ms) | per layer (ms) | vs previous row |\n");
  std::printf("| ---: | ---: | ---: | ---: | ---: | ---: |\n");
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  double prev_ms = 0;
  int prev_depth = 0;
  for (int depth : depths) {
    CompileDepthRow row;
    std::string cmd =
        fmt::format("'{}' --compile-depth-one {}", self.string(), depth);
    FILE *p = ec ? nullptr : popen(cmd.c_str(), "r");
    bool ok = false;
    if (p) {
      long long nodes = 0;
      ok = std::fscanf(p, "%d %lld %lf %lf %lf", &row.depth, &nodes,
                       &row.trace_ms, &row.compile_ms, &row.loss) == 5;
      row.nodes = nodes;
      ok = pclose(p) == 0 && ok;
    }
    if (!ok) // no /proc or the child failed: measure in this process
      row = measure_compile_depth(depth);
    std::string growth = "-";
    if (prev_ms > 0)
      growth = fmt::format("{:.1f}x time for {:.0f}x depth",
                           row.compile_ms / prev_ms,
                           static_cast<double>(depth) / prev_depth);
    std::printf("| %d | %lld | %.1f | %.1f | %.2f | %s |\n", depth,
                static_cast<long long>(row.nodes), row.trace_ms, row.compile_ms,
                row.compile_ms / depth, growth.c_str());
    std::fflush(stdout);
    prev_ms = row.compile_ms;
    prev_depth = depth;
  }
}

int compile_depth_one(int depth) {
  CompileDepthRow row = measure_compile_depth(depth);
  std::printf("%d %lld %.6f %.6f %.9g\n", row.depth,
              static_cast<long long>(row.nodes), row.trace_ms, row.compile_ms,
              row.loss);
  return std::isfinite(row.loss) ? 0 : 1;
}

} // namespace kiln
