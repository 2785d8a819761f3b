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
#include "runtime/cpu_host_ops.h"
#include "runtime/cpu_thread_pool.h"

#include <algorithm>
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

struct ConvCase {
  const char *name;
  int64_t n, c, hw, o;
  bool need_dx;
};

double time_gemm(const GemmDesc &d, ThreadPool &pool, int iters) {
  auto extent = [](const std::vector<int64_t> &off, int64_t rows, int64_t ld) {
    int64_t hi = 0;
    for (int64_t o : off)
      hi = std::max(hi, o);
    return static_cast<size_t>(hi + rows * ld);
  };
  std::vector<float> a(extent(d.a_off, d.trans_a ? d.k : d.m, d.lda), 0.5f);
  std::vector<float> b(extent(d.b_off, d.trans_b ? d.n : d.k, d.ldb), 0.25f);
  std::vector<float> c(extent(d.c_off, d.m, d.n));
  return time_ms([&] { run_gemm(d, a.data(), b.data(), c.data(), pool); }, 3,
                 iters)
      .median;
}

// The same products as one GEMM each over all the images (columns laid out
// [C*9, N*Ho*Wo]): y = w cols, dcols = w^T dy (when dx is needed), dw =
// dy cols^T. What a layout that does not batch per image could reach with
// the same OpenBLAS (the transposes to and from NCHW not counted).
double merged_gemms_ms(const ConvCase &cc, ThreadPool &pool, int iters) {
  const int64_t rows = cc.c * 9, cols = cc.n * cc.hw * cc.hw;
  auto one = [](int64_t m, int64_t n, int64_t k, bool ta, bool tb, int64_t lda,
                int64_t ldb) {
    GemmDesc d;
    d.m = m;
    d.n = n;
    d.k = k;
    d.trans_a = ta;
    d.trans_b = tb;
    d.lda = lda;
    d.ldb = ldb;
    d.a_off = d.b_off = d.c_off = {0};
    d.stride_a = d.stride_b = d.stride_c = 0;
    return d;
  };
  double ms =
      time_gemm(one(cc.o, cols, rows, false, false, rows, cols), pool, iters);
  if (cc.need_dx)
    ms +=
        time_gemm(one(rows, cols, cc.o, true, false, rows, cols), pool, iters);
  ms += time_gemm(one(cc.o, rows, cols, false, true, cols, cols), pool, iters);
  return ms;
}

// The GEMM launches of `traced`'s plan alone, on scratch buffers: the part
// of kiln's im2col + GEMM convolution that OpenBLAS does (the sum of each
// GEMM's median), i.e. what the convolution would cost with free im2col and
// col2im.
double gemms_alone_ms(const Graph &traced, ThreadPool &pool, int iters) {
  std::unique_ptr<Graph> g = traced.clone();
  PassManager pm;
  pm.add_pipeline(default_pipeline());
  pm.run(*g);
  ExecutionPlan plan = lower(*g);
  double total = 0;
  for (const Launch &l : plan.launches) {
    if (l.kind != LaunchKind::gemm || l.gemm.f64)
      continue;
    total += time_gemm(l.gemm, pool, iters);
  }
  return total;
}

void bench_cnn_step(const PeerResults &torch, int iters) {
  std::printf("### CNN training step (conv32-conv64-128-10 with batch norm, "
              "max-pool, dropout; forward, cross-entropy, backward, SGD "
              "momentum 0.9 + weight decay 5e-4), f32; kiln and LibTorch "
              "each at their best thread setting\n\n");
  std::printf("| batch | kiln launches | kiln median (ms) | kiln p90 (ms) | "
              "kiln setting | LibTorch best median (ms) | LibTorch p90 (ms) | "
              "LibTorch setting | kiln / LibTorch |\n");
  std::printf("| ---: | ---: | ---: | ---: | --- | ---: | ---: | --- | ---: "
              "|\n");
  for (int64_t batch : {64, 256}) {
    std::string launches;
    Timing best{0, 0};
    int best_threads = 0;
    for (int threads : {1, 2}) {
      set_default_backend(make_cpu_backend(threads));
      manual_seed(0);
      std::shared_ptr<Cnn> model = make_cnn();
      optim::SGD opt(
          model->parameters(),
          optim::SGDOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4});
      Array x = wave({DType::f32, {batch, 784}}, 0.37, 1.0);
      Array y({DType::i32, {batch}});
      for (int64_t i = 0; i < batch; ++i)
        y.set(i, static_cast<double>(i % 10));
      if (launches.empty()) {
        Program traced = trace_train_step(*model, nn::cross_entropy, &opt,
                                          x.type(), y.type(), TraceStage::step);
        launches = launches_of(traced.graph());
      }
      TrainStep step = compile_train_step(*model, nn::cross_entropy, opt,
                                          x.type(), y.type());
      double loss = step(x, y); // the first call compiles
      if (!std::isfinite(loss))
        fail("cnn step (batch {}): the loss is {}", batch, loss);
      Timing t = time_ms([&] { step(x, y); }, 3, iters);
      if (!best_threads || t.median < best.median) {
        best = t;
        best_threads = threads;
      }
    }
    std::printf("| %lld | %s | %.3f | %.3f | kiln threads=%d |",
                static_cast<long long>(batch), launches.c_str(), best.median,
                best.p90, best_threads);
    print_peer_cell(torch.best(fmt::format("cnn_step_b{}", batch)),
                    best.median);
  }
}

struct KilnConv {
  std::string launches;
  Timing t;
  double gemm_ms = 0;   // its GEMM launches alone (autodiff stage)
  double merged_ms = 0; // one GEMM per product over all images
};

// kiln's conv2d(x, w, pad 1) with loss sum(y): up to the gradients
// (TraceStage::autodiff: dw, and dx when x is a parameter) or the forward
// alone (TraceStage::traced), on a CPU backend of `threads` threads.
KilnConv kiln_conv(const ConvCase &cc, TraceStage stage, int threads,
                   int iters) {
  set_default_backend(make_cpu_backend(threads));
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
  if (stage == TraceStage::autodiff) {
    ThreadPool pool(threads);
    r.gemm_ms = gemms_alone_ms(prog.graph(), pool, iters);
    r.merged_ms = merged_gemms_ms(cc, pool, iters);
  }
  return r;
}

// One row of the conv table over the rounds: each round's median and its
// ratio to that round's LibTorch best.
struct RoundRow {
  std::string conv, impl, launches, setting;
  std::vector<double> ms, ratio;
};

double median_of(std::vector<double> v) {
  if (v.empty())
    return std::nan("");
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// `rounds` rounds, each running LibTorch, oneDNN and kiln one after the
// other, so that every round's ratios compare runs made within seconds of
// each other (this machine's speed drifts by 2x over minutes); the table
// gives the median over the rounds of each median and of each ratio.
void bench_conv_alone(int iters, int rounds) {
  const std::string onednn_missing =
      "kiln_conv_onednn was not built (install libdnnl-dev: bash "
      "tools/install-deps.sh --with-torch, then rebuild)";
  const ConvCase cases[] = {{"conv1", 64, 1, 28, 32, false},
                            {"conv2", 64, 32, 14, 64, true}};
  std::vector<RoundRow> rows;
  auto add = [&](const std::string &conv, const std::string &impl,
                 const std::string &launches, const std::string &setting,
                 double ms, const PeerResult *tb) {
    RoundRow *row = nullptr;
    for (RoundRow &r : rows)
      if (r.conv == conv && r.impl == impl && r.setting == setting)
        row = &r;
    if (!row) {
      rows.push_back({conv, impl, launches, setting, {}, {}});
      row = &rows.back();
    }
    row->ms.push_back(ms);
    if (tb)
      row->ratio.push_back(ms / tb->median);
  };
  PeerResults onednn; // the last round's, for the parts table
  for (int round = 0; round < rounds; ++round) {
    PeerResults torch = run_torch_peer(iters, "conv");
    onednn =
        run_peer("kiln_conv_onednn", fmt::format("{}", iters), onednn_missing);
    if (round == 0 && !onednn.why_missing.empty())
      std::printf("oneDNN rows missing: %s\n\n", onednn.why_missing.c_str());
    for (const ConvCase &cc : cases) {
      std::string key = fmt::format("{}_fwdbwd", cc.name);
      const PeerResult *tb = torch.best(key);
      for (int threads : {1, 2}) {
        KilnConv k = kiln_conv(cc, TraceStage::autodiff, threads, iters);
        std::string set = fmt::format("kiln threads={}", threads);
        add(cc.name, "kiln im2col + OpenBLAS GEMM", k.launches, set, k.t.median,
            tb);
        add(cc.name, "its GEMMs alone (free im2col/col2im)", "-", set,
            k.gemm_ms, tb);
        add(cc.name, "one OpenBLAS GEMM per product, all images (no im2col)",
            "-", set, k.merged_ms, tb);
      }
      if (tb)
        add(cc.name, "LibTorch (best setting of each round)", "-",
            "torch best of (1,2) x (1,2) threads", tb->median, tb);
      for (const PeerResult &r : onednn.rows)
        if (r.name == key)
          add(cc.name, "oneDNN", "-", r.setting, r.median, tb);
    }
  }
  std::printf("\n### conv2d forward + backward alone (f32, 3x3, stride 1, pad "
              "1, batch 64, loss sum(y)): conv1 x [64,1,28,28] w [32,1,3,3] "
              "(y, dw); conv2 x [64,32,14,14] w [64,32,3,3] (y, dx, dw); "
              "median over %d round(s) of each round's median and of its "
              "ratio to that round's LibTorch best\n\n",
              rounds);
  std::printf("| conv | implementation | kiln launches | median (ms) | "
              "setting | / LibTorch best | ratio range over rounds |\n");
  std::printf("| --- | --- | ---: | ---: | --- | ---: | --- |\n");
  for (const RoundRow &r : rows) {
    std::string ratio = "-", range = "-";
    if (!r.ratio.empty()) {
      ratio = fmt::format("{:.2f}", median_of(r.ratio));
      auto [lo, hi] = std::minmax_element(r.ratio.begin(), r.ratio.end());
      range = fmt::format("{:.2f}-{:.2f}", *lo, *hi);
    }
    std::printf("| %s | %s | %s | %.3f | %s | %s | %s |\n", r.conv.c_str(),
                r.impl.c_str(), r.launches.c_str(), median_of(r.ms),
                r.setting.c_str(), ratio.c_str(), range.c_str());
  }
  // The parts: kiln's forward (+ the sum) against oneDNN's primitives.
  std::printf("\n### conv2d parts (ms, median): kiln's forward + sum against "
              "oneDNN's primitives alone\n\n");
  std::printf("| conv | implementation | part | median (ms) | p90 (ms) | "
              "setting |\n");
  std::printf("| --- | --- | --- | ---: | ---: | --- |\n");
  for (const ConvCase &cc : cases) {
    for (int threads : {1, 2}) {
      KilnConv k = kiln_conv(cc, TraceStage::traced, threads, iters);
      std::printf("| %s | kiln im2col + OpenBLAS GEMM | forward + sum (%s "
                  "launches) | %.3f | %.3f | kiln threads=%d |\n",
                  cc.name, k.launches.c_str(), k.t.median, k.t.p90, threads);
    }
    for (const char *part : {"fwd", "bwd_data", "bwd_weights"})
      for (const PeerResult &r : onednn.rows)
        if (r.name == fmt::format("{}_{}", cc.name, part))
          std::printf("| %s | oneDNN | %s | %.3f | %.3f | %s |\n", cc.name,
                      part, r.median, r.p90, r.setting.c_str());
  }
}

} // namespace

void bench_cnn(int iters, int rounds) {
  std::printf("## kiln bench --cnn (CPU: %d cores; kiln at 1 and 2 "
              "threads)\n\n",
              ThreadPool::global().size());
  // The peers run one at a time, never beside kiln, so that no two
  // measurements share the two cores.
  PeerResults torch = run_torch_peer(iters, "cnn-step");
  if (!torch.why_missing.empty())
    std::printf("LibTorch rows missing: %s\n\n", torch.why_missing.c_str());
  bench_cnn_step(torch, std::max(10, iters / 4));
  bench_conv_alone(iters, rounds);
  set_default_backend(make_cpu_backend());
}

} // namespace kiln
