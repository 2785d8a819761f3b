// The MLP training step benchmark: kiln's compiled step (the one `kiln
// train` runs: make_mlp, cross-entropy, SGD momentum 0.9 + weight decay
// 5e-4, traced by compile_train_step, the default pipeline, the CPU
// backend) against LibTorch's eager step, ms per step as median and p90 of
// many steps after warm-up; and the compile time of that step, cold (first
// compile in the process) and cached (same graph again: the per-process
// kernel cache hits).
#include "bench/bench_common.h"
#include "bench/mlp_step_case.h"
#include "frontend/compile.h"
#include "frontend/loss.h"
#include "frontend/models.h"
#include "frontend/optim.h"
#include "frontend/random.h"
#include "frontend/trace.h"
#include "passes/pass_manager.h"
#include "plan/plan.h"
#include "runtime/cpu_backend.h"

#include <chrono>
#include <cmath>
#include <cstdio>

namespace kiln {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

StepCase make_case(int64_t batch) { return make_step_case(batch, 1); }

} // namespace

void bench_train_step(const PeerResults &peer, int iters) {
  set_default_backend(make_cpu_backend());
  std::printf("\n### MLP 784-256-128-10 training step (forward, loss, "
              "backward, SGD update), f32\n\n");
  std::printf("| batch | kiln launches | kiln median (ms) | kiln p90 (ms) | "
              "LibTorch best median (ms) | LibTorch p90 (ms) | LibTorch "
              "setting | kiln / LibTorch |\n");
  std::printf("| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |\n");
  double cold_ms = 0, cached_ms = 0, trace_ms = 0;
  for (int64_t batch : {64, 256}) {
    StepCase c = make_case(batch);
    auto t0 = Clock::now();
    Program traced = trace_train_step(*c.model, nn::cross_entropy, c.opt.get(),
                                      c.x.type(), c.y.type(), TraceStage::step);
    double t_trace = ms_since(t0);
    // What the step launches: its execution plan (plan/plan.h).
    std::unique_ptr<Graph> fused = traced.graph().clone();
    PassManager pm;
    pm.add_pipeline(default_pipeline());
    pm.run(*fused);
    ExecutionPlan plan = lower(*fused);
    std::string launches = fmt::format("{} ({} gemm)", plan.launches.size(),
                                       plan.count(LaunchKind::gemm));
    t0 = Clock::now();
    TrainStep step = compile_train_step(*c.model, nn::cross_entropy, *c.opt,
                                        c.x.type(), c.y.type());
    step(c.x, c.y); // the first call compiles: passes, codegen, JIT
    double t_first = ms_since(t0);
    if (batch == 64) {
      trace_ms = t_trace;
      cold_ms = t_first;
      clear_compile_cache(); // drop the executable, keep the kernel cache
      t0 = Clock::now();
      TrainStep again = compile_train_step(*c.model, nn::cross_entropy, *c.opt,
                                           c.x.type(), c.y.type());
      again(c.x, c.y);
      cached_ms = ms_since(t0);
    }
    Timing t = time_ms([&] { step(c.x, c.y); }, 30, iters);
    const PeerResult *p = peer.best(fmt::format("mlp_step_b{}", batch));
    if (p)
      std::printf("| %lld | %s | %.3f | %.3f | %.3f | %.3f | %s | %.2f |\n",
                  static_cast<long long>(batch), launches.c_str(), t.median,
                  t.p90, p->median, p->p90, p->setting.c_str(),
                  t.median / p->median);
    else
      std::printf("| %lld | %s | %.3f | %.3f | - | - | LibTorch peer not "
                  "built | - |\n",
                  static_cast<long long>(batch), launches.c_str(), t.median,
                  t.p90);
  }
  std::printf("\n### Compile time of the MLP step (batch 64)\n\n");
  std::printf("| stage | ms |\n| --- | ---: |\n");
  std::printf("| trace (forward, autodiff, optimizer) | %.1f |\n", trace_ms);
  std::printf("| cold: trace + passes + LLVM codegen + JIT + first step | "
              "%.1f |\n",
              cold_ms);
  std::printf("| cached: same graph again (kernel cache hit) + first step | "
              "%.1f |\n",
              cached_ms);
}

} // namespace kiln
