// `kiln bench --cnn`: the built-in CNN (frontend/models.h, make_cnn) training
// step against LibTorch, and conv2d forward + backward alone for its two
// convolutions against LibTorch and oneDNN (issue 12: the CPU convolution is
// chosen by these numbers, BENCHMARKS.md).
//
// kiln's convolution is what its default pipeline makes of the conv2d op
// (passes/decompose_windows.cpp: im2col + batched matmul on OpenBLAS; the
// backward is col2im of w^T dy and sum_n dy cols^T, ir/window_vjp.cpp).
// LibTorch (kiln_torch_peer cnn) and oneDNN (kiln_conv_onednn) run as
// separate processes, so neither is a dependency of kiln.
//
// conv2d alone, as in the CNN: conv1 x [64,1,28,28] w [32,1,3,3] pad 1 (its
// input is data: the forward and dw), conv2 x [64,32,14,14] w [64,32,3,3]
// pad 1 (the forward, dx and dw); the loss is sum(y), so dy is all ones.
#include "bench/bench_common.h"
#include "frontend/compile.h"
#include "frontend/conv.h"
#include "frontend/loss.h"
#include "frontend/models.h"
#include "frontend/optim.h"
#include "frontend/parameter.h"
#include "frontend/random.h"
#include "frontend/trace.h"
#include "ir/error.h"
#include "passes/pass_manager.h"
#include "plan/plan.h"
#include "runtime/cpu_backend.h"
#include "runtime/cpu_thread_pool.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>

namespace kiln {

namespace {

// What a traced graph launches on the CPU: its execution plan after the
// default pipeline, as "total (n gemm)".
std::string launches_of(const Graph &traced) {
  std::unique_ptr<Graph> g = traced.clone();
  PassManager pm;
  pm.add_pipeline(default_pipeline());
  pm.run(*g);
  ExecutionPlan plan = lower(*g);
  return fmt::format("{} ({} gemm)", plan.launches.size(),
                     plan.count(LaunchKind::gemm));
}

Array wave(const Type &t, double freq, double scale) {
  Array a(t);
  for (int64_t i = 0; i < a.numel(); ++i)
    a.set(i, scale * std::sin(freq * static_cast<double>(i)));
  return a;
}

void print_peer_cell(const PeerResult *p, double kiln_ms) {
  if (p)
    std::printf(" %.3f | %.3f | %s | %.2f |\n", p->median, p->p90,
                p->setting.c_str(), kiln_ms / p->median);
  else
    std::printf(" - | - | LibTorch peer not built | - |\n");
}

void bench_cnn_step(const PeerResults &torch, int iters) {
  std::printf("\n### CNN training step (conv32-conv64-128-10 with batch norm, "
              "max-pool, dropout; forward, cross-entropy, backward, SGD "
              "momentum 0.9 + weight decay 5e-4), f32\n\n");
  std::printf("| batch | kiln launches | kiln median (ms) | kiln p90 (ms) | "
              "LibTorch best median (ms) | LibTorch p90 (ms) | LibTorch "
              "setting | kiln / LibTorch |\n");
  std::printf("| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |\n");
  for (int64_t batch : {64, 256}) {
    manual_seed(0);
    std::shared_ptr<Cnn> model = make_cnn();
    optim::SGD opt(
        model->parameters(),
        optim::SGDOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4});
    Array x = wave({DType::f32, {batch, 784}}, 0.37, 1.0);
    Array y({DType::i32, {batch}});
    for (int64_t i = 0; i < batch; ++i)
      y.set(i, static_cast<double>(i % 10));
    Program traced = trace_train_step(*model, nn::cross_entropy, &opt, x.type(),
                                      y.type(), TraceStage::step);
    std::string launches = launches_of(traced.graph());
    TrainStep step =
        compile_train_step(*model, nn::cross_entropy, opt, x.type(), y.type());
    double loss = step(x, y); // the first call compiles
    if (!std::isfinite(loss))
      fail("cnn step (batch {}): the loss is {}", batch, loss);
    Timing t = time_ms([&] { step(x, y); }, 3, iters);
    std::printf("| %lld | %s | %.3f | %.3f |", static_cast<long long>(batch),
                launches.c_str(), t.median, t.p90);
    print_peer_cell(torch.best(fmt::format("cnn_step_b{}", batch)), t.median);
  }
}

struct ConvCase {
  const char *name;
  int64_t n, c, hw, o;
  bool need_dx;
};

struct KilnConv {
  std::string launches;
  Timing t;
};

// kiln's conv2d(x, w, pad 1) with loss sum(y): up to the gradients
// (TraceStage::autodiff: dw, and dx when x is a parameter) or the forward
// alone (TraceStage::traced).
KilnConv kiln_conv(const ConvCase &cc, TraceStage stage, int iters) {
  Type xt{DType::f32, {cc.n, cc.c, cc.hw, cc.hw}};
  auto w = std::make_shared<Parameter>(
      "conv.weight", wave({DType::f32, {cc.o, cc.c, 3, 3}}, 0.11, 0.1));
  std::shared_ptr<Parameter> xp;
  std::vector<StepInput> inputs;
  if (cc.need_dx)
    xp = std::make_shared<Parameter>("conv.x", wave(xt, 0.37, 1.0));
  else
    inputs.push_back({"x", xt});
  Program prog = trace_train_step(
      inputs,
      [&](const StepInputs &in) {
        Tensor x = xp ? xp->tensor() : in["x"];
        return sum(conv2d(x, w->tensor(), {}, {.padding = 1}));
      },
      nullptr, stage);
  std::vector<Array> args = prog.gather_inputs();
  if (!xp)
    args[prog.input_index("x")] = wave(xt, 0.37, 1.0);
  std::vector<Array> out = prog.run(args); // compiles
  size_t want = stage == TraceStage::autodiff ? (xp ? 3 : 2) : 1;
  if (out.size() != want)
    fail("{}: the graph returned {} arrays, want {}", cc.name, out.size(),
         want);
  KilnConv r;
  r.launches = launches_of(prog.graph());
  r.t = time_ms([&] { prog.run(args); }, 5, iters);
  return r;
}

void bench_conv_alone(const PeerResults &torch, const PeerResults &onednn,
                      int iters) {
  const ConvCase cases[] = {{"conv1", 64, 1, 28, 32, false},
                            {"conv2", 64, 32, 14, 64, true}};
  std::printf("\n### conv2d forward + backward alone (f32, 3x3, stride 1, pad "
              "1, batch 64, loss sum(y)): conv1 x [64,1,28,28] w [32,1,3,3] "
              "(y, dw); conv2 x [64,32,14,14] w [64,32,3,3] (y, dx, dw)\n\n");
  std::printf("| conv | implementation | kiln launches | median (ms) | p90 "
              "(ms) | setting | / LibTorch best |\n");
  std::printf("| --- | --- | ---: | ---: | ---: | --- | ---: |\n");
  int threads = ThreadPool::global().size();
  for (const ConvCase &cc : cases) {
    std::string key = fmt::format("{}_fwdbwd", cc.name);
    const PeerResult *tb = torch.best(key);
    auto ratio = [&](double ms) {
      return tb ? fmt::format("{:.2f}", ms / tb->median) : std::string("-");
    };
    KilnConv k = kiln_conv(cc, TraceStage::autodiff, iters);
    std::printf("| %s | kiln im2col + OpenBLAS GEMM | %s | %.3f | %.3f | "
                "kiln threads=%d | %s |\n",
                cc.name, k.launches.c_str(), k.t.median, k.t.p90, threads,
                ratio(k.t.median).c_str());
    if (tb)
      std::printf("| %s | LibTorch (best setting) | - | %.3f | %.3f | %s | "
                  "1.00 |\n",
                  cc.name, tb->median, tb->p90, tb->setting.c_str());
    for (const PeerResult &r : onednn.rows)
      if (r.name == key)
        std::printf("| %s | oneDNN | - | %.3f | %.3f | %s | %s |\n", cc.name,
                    r.median, r.p90, r.setting.c_str(),
                    ratio(r.median).c_str());
  }
  // The parts: kiln's forward (+ the sum) against oneDNN's primitives.
  std::printf("\n### conv2d parts (ms, median): kiln's forward + sum against "
              "oneDNN's primitives alone\n\n");
  std::printf("| conv | implementation | part | median (ms) | p90 (ms) | "
              "setting |\n");
  std::printf("| --- | --- | --- | ---: | ---: | --- |\n");
  for (const ConvCase &cc : cases) {
    KilnConv k = kiln_conv(cc, TraceStage::traced, iters);
    std::printf("| %s | kiln im2col + OpenBLAS GEMM | forward + sum (%s "
                "launches) | %.3f | %.3f | kiln threads=%d |\n",
                cc.name, k.launches.c_str(), k.t.median, k.t.p90, threads);
    for (const char *part : {"fwd", "bwd_data", "bwd_weights"})
      for (const PeerResult &r : onednn.rows)
        if (r.name == fmt::format("{}_{}", cc.name, part))
          std::printf("| %s | oneDNN | %s | %.3f | %.3f | %s |\n", cc.name,
                      part, r.median, r.p90, r.setting.c_str());
  }
}

} // namespace

void bench_cnn(int iters) {
  set_default_backend(make_cpu_backend());
  // The peers first, one at a time, so that no two measurements share the
  // two cores.
  PeerResults torch = run_torch_peer(iters, "cnn");
  PeerResults onednn =
      run_peer("kiln_conv_onednn", fmt::format("{}", iters),
               "kiln_conv_onednn was not built (install libdnnl-dev: bash "
               "tools/install-deps.sh --with-torch, then rebuild)");
  std::printf("## kiln bench --cnn (CPU: %d threads)\n\n",
              ThreadPool::global().size());
  if (!torch.why_missing.empty())
    std::printf("LibTorch rows missing: %s\n\n", torch.why_missing.c_str());
  if (!onednn.why_missing.empty())
    std::printf("oneDNN rows missing: %s\n\n", onednn.why_missing.c_str());
  bench_cnn_step(torch, std::max(10, iters / 4));
  bench_conv_alone(torch, onednn, iters);
}

} // namespace kiln
