// Fusion benchmark, the llm.c way: a reference, the variants, validation,
// then time and effective bandwidth. Two workloads over N floats:
//   chain: out = relu(x * w + b) * 0.5 + x        (reads x, w, b; writes out)
//   sgd:   v = 0.9 v + g + 5e-4 p; p = p - lr v  (reads p, v, g; writes p, v)
// each run three ways: kiln fused (one JIT kernel), kiln unfused (one kernel
// per op, intermediates through memory), and a hand-written single-pass
// C++ loop (-O3 -march=native) on the same thread pool. Effective GB/s
// counts each array read and written once. Prints a markdown table.
//
// The MLP step against LibTorch is in bench/bench_step.cpp; LibTorch's
// numbers come from the separate kiln_torch_peer process (bench_common.h).
//
//   kiln_bench [--sizes 1000000,16000000] [--reps N] [--depths 2,8,32,128]
//   kiln_bench --compile-depth 2,8,32,128   (only the compile-time table)
//   kiln_bench --cnn [--reps N] [--rounds R]  (only the CNN step and conv2d
//       alone against LibTorch and oneDNN, bench/bench_cnn.cpp)
//   kiln_bench --help
// Options are parsed with CLI11; a malformed value is a message and exit 2.
#include "bench/bench_common.h"
#include "ir/builder.h"
#include "ir/error.h"
#include "ir/fused_kind.h"
#include "runtime/cpu_backend.h"
#include "runtime/cpu_thread_pool.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace kiln {
namespace {

using Clock = std::chrono::steady_clock;

double median_seconds(const std::function<void()> &f, int reps) {
  f(); // warm up (first touch, JIT already done)
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    f();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

Array filled(int64_t n, double scale, double shift) {
  Array a({DType::f32, {n}});
  float *p = a.as<float>();
  for (int64_t i = 0; i < n; ++i)
    p[i] = static_cast<float>(std::sin(static_cast<double>(i) * scale) + shift);
  return a;
}

// The chain as a graph: one fused node, or one node per op.
std::unique_ptr<Graph> chain_graph(int64_t n, bool fused) {
  auto g = std::make_unique<Graph>("chain");
  Type t{DType::f32, {n}};
  std::vector<Value *> in = {g->add_input("x", t), g->add_input("w", t),
                             g->add_input("b", t)};
  auto body = [](Builder &b, const std::vector<Value *> &v) {
    Value *h = b.relu(b.add(b.mul(v[0], v[1]), v[2]));
    return b.add(b.mul(h, 0.5), v[0]);
  };
  if (!fused) {
    Builder b(*g);
    g->add_output(body(b, in));
    return g;
  }
  auto bg = std::make_unique<Graph>("body");
  std::vector<Value *> bin;
  for (Value *v : in)
    bin.push_back(bg->add_input(v->name, v->type));
  Builder bb(*bg);
  bg->add_output(body(bb, bin));
  Node *f = g->append(Op::Fused, in, {t},
                      {{"kind", fused_kind_attr(FusedKind::elementwise)}},
                      std::move(bg));
  g->add_output(f->result());
  return g;
}

// SGD with momentum and weight decay; p and v updated in place.
std::unique_ptr<Graph> sgd_graph(int64_t n, bool fused) {
  auto g = std::make_unique<Graph>("sgd");
  Type t{DType::f32, {n}};
  std::vector<Value *> in = {g->add_input("p", t, InputKind::param),
                             g->add_input("v", t, InputKind::state),
                             g->add_input("g", t),
                             g->add_input("lr", {DType::f32, {}})};
  auto body = [](Builder &b, const std::vector<Value *> &a) {
    Value *v = b.add(b.add(b.mul(a[1], 0.9), a[2]), b.mul(a[0], 5e-4));
    return std::vector<Value *>{b.sub(a[0], b.mul(a[3], v)), v};
  };
  std::vector<Value *> outs;
  if (!fused) {
    Builder b(*g);
    outs = body(b, in);
  } else {
    auto bg = std::make_unique<Graph>("body");
    std::vector<Value *> bin;
    for (Value *v : in)
      bin.push_back(bg->add_input(v->name, v->type));
    Builder bb(*bg);
    for (Value *o : body(bb, bin))
      bg->add_output(o);
    Node *f = g->append(Op::Fused, in, {t, t},
                        {{"kind", fused_kind_attr(FusedKind::multi_tensor)}},
                        std::move(bg));
    outs = f->results;
  }
  g->add_output(outs[0], 0);
  g->add_output(outs[1], 1);
  return g;
}

struct Row {
  std::string workload, variant;
  int64_t n;
  double seconds, bytes;
};

void print_table(const std::vector<Row> &rows) {
  std::printf(
      "| workload | N | variant | median time (ms) | effective GB/s |\n");
  std::printf("| --- | ---: | --- | ---: | ---: |\n");
  for (const Row &r : rows)
    std::printf("| %s | %lld | %s | %.3f | %.1f |\n", r.workload.c_str(),
                static_cast<long long>(r.n), r.variant.c_str(), r.seconds * 1e3,
                r.bytes / r.seconds / 1e9);
}

// A whole number of at least 1 (CLI11's PositiveNumber accepts 2.5 and
// prints its range as a 300-digit double).
const CLI::Validator positive(
    [](std::string &s) -> std::string {
      int64_t v = 0;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec != std::errc() || end != s.data() + s.size() || v < 1)
        return "expected a whole number of at least 1, got '" + s + "'";
      return {};
    },
    "N>=1");

int run(int argc, char **argv) {
  std::vector<int64_t> sizes = {1000000, 16000000};
  std::vector<int> depths = {2, 8, 32, 128};
  std::vector<int> compile_depths;
  int reps = 0, depth_one = 0;
  bool cnn = false;
  int rounds = 3;
  CLI::App app{"kiln bench: kernel fusion and training-step benchmarks, "
               "printed as markdown tables (see BENCHMARKS.md)"};
  app.name("kiln bench");
  app.add_option("--sizes", sizes,
                 "element counts of the fusion workloads, comma-separated")
      ->delimiter(',')
      ->check(positive)
      ->capture_default_str();
  app.add_option("--reps", reps,
                 "timed repetitions per case (default: 101 for small "
                 "sizes, 21 for large, 200 for LibTorch)")
      ->check(positive);
  app.add_option("--depths", depths,
                 "MLP depths of the compile-time table, comma-separated")
      ->delimiter(',')
      ->check(positive)
      ->capture_default_str();
  app.add_option("--compile-depth", compile_depths,
                 "print only the compile-time table, for these depths")
      ->delimiter(',')
      ->check(positive);
  app.add_flag("--cnn", cnn,
               "print only the CNN tables: the CNN training step and conv2d "
               "forward + backward alone, against LibTorch and oneDNN");
  app.add_option("--rounds", rounds,
                 "with --cnn: rounds of the conv2d table, each running "
                 "LibTorch, oneDNN and kiln in turn (medians and ratios over "
                 "the rounds)")
      ->check(positive)
      ->capture_default_str();
  // Internal: one depth in a fresh process (bench_compile.cpp).
  app.add_option("--compile-depth-one", depth_one)->check(positive)->group("");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (depth_one > 0)
    return compile_depth_one(depth_one);
  if (!compile_depths.empty()) {
    bench_compile_depth(compile_depths);
    return 0;
  }
  if (cnn) {
    bench_cnn(reps > 0 ? reps : 40, rounds);
    return 0;
  }
  PeerResults peer = run_torch_peer(reps > 0 ? reps : 200);
  ThreadPool &pool = ThreadPool::global();
  auto cpu = make_cpu_backend();
  std::vector<Row> rows;
  for (int64_t n : sizes) {
    int r = reps > 0 ? reps : (n <= 2000000 ? 101 : 21);
    double fl = static_cast<double>(n) * 4;
    // --- ceiling: a parallel copy (1 read + 1 write) ---
    {
      Array a = filled(n, 0.1, 0), b = filled(n, 0.2, 0);
      const float *src = a.as<float>();
      float *dst = b.as<float>();
      double s = median_seconds(
          [&] {
            pool.parallel_for(n, 16384, [&](int64_t lo, int64_t hi) {
              std::memcpy(dst + lo, src + lo, (hi - lo) * sizeof(float));
            });
          },
          r);
      rows.push_back({"copy (ceiling)", "memcpy", n, s, 2 * fl});
    }
    // --- chain ---
    {
      std::vector<Array> in = {filled(n, 0.001, 0), filled(n, 0.002, 0.5),
                               filled(n, 0.003, -0.2)};
      Array ref({DType::f32, {n}});
      const float *x = in[0].as<float>(), *w = in[1].as<float>(),
                  *bb = in[2].as<float>();
      float *o = ref.as<float>();
      double s = median_seconds(
          [&] {
            pool.parallel_for(n, 16384, [&](int64_t lo, int64_t hi) {
              const float *__restrict xr = x, *__restrict wr = w,
                                      *__restrict br = bb;
              float *__restrict orr = o;
              for (int64_t i = lo; i < hi; ++i) {
                float h = xr[i] * wr[i] + br[i];
                h = h > 0 ? h : 0;
                orr[i] = h * 0.5f + xr[i];
              }
            });
          },
          r);
      rows.push_back({"relu(x*w+b)*0.5+x", "hand-written loop", n, s, 4 * fl});
      for (bool fused : {true, false}) {
        auto g = chain_graph(n, fused);
        auto exe = cpu->compile(*g);
        Array out = exe->run(in)[0];
        for (int64_t i = 0; i < n; i += n / 97 + 1)
          if (std::fabs(out.as<float>()[i] - o[i]) > 1e-5f)
            fail("chain {}: element {} is {}, want {}", fused, i,
                 out.as<float>()[i], o[i]);
        double t = median_seconds([&] { exe->run(in); }, r);
        rows.push_back({"relu(x*w+b)*0.5+x",
                        fused ? "kiln fused" : "kiln unfused", n, t, 4 * fl});
      }
      if (const PeerResult *pr = peer.best(fmt::format("chain_{}", n)))
        rows.push_back({"relu(x*w+b)*0.5+x",
                        "LibTorch ops (" + pr->setting + ")", n,
                        pr->median / 1e3, 4 * fl});
    }
    // --- sgd ---
    {
      Array lr({DType::f32, {}});
      lr.set(0, 1e-3);
      std::vector<Array> in = {filled(n, 0.001, 0), filled(n, 0.002, 0),
                               filled(n, 0.003, 0), lr};
      Array p = in[0].clone(), v = in[1].clone();
      float *pp = p.as<float>(), *vp = v.as<float>();
      const float *gp = in[2].as<float>();
      double s = median_seconds(
          [&] {
            pool.parallel_for(n, 16384, [&](int64_t lo, int64_t hi) {
              float *__restrict pr = pp, *__restrict vr = vp;
              const float *__restrict gr = gp;
              for (int64_t i = lo; i < hi; ++i) {
                float vn = vr[i] * 0.9f + gr[i] + pr[i] * 5e-4f;
                vr[i] = vn;
                pr[i] = pr[i] - 1e-3f * vn;
              }
            });
          },
          r);
      rows.push_back({"sgd momentum+wd", "hand-written loop", n, s, 5 * fl});
      for (bool fused : {true, false}) {
        auto g = sgd_graph(n, fused);
        auto exe = cpu->compile(*g);
        std::vector<Array> mine = {in[0].clone(), in[1].clone(), in[2], lr};
        Array p1 = in[0].clone(), v1 = in[1].clone();
        exe->run(mine);
        float *pr = p1.as<float>(), *vr = v1.as<float>();
        for (int64_t i = 0; i < n; i += n / 97 + 1) {
          float vn = vr[i] * 0.9f + gp[i] + pr[i] * 5e-4f;
          float pn = pr[i] - 1e-3f * vn;
          if (std::fabs(mine[0].as<float>()[i] - pn) > 1e-5f)
            fail("sgd {}: element {} is {}, want {}", fused, i,
                 mine[0].as<float>()[i], pn);
        }
        double t = median_seconds([&] { exe->run(mine); }, r);
        rows.push_back({"sgd momentum+wd",
                        fused ? "kiln fused" : "kiln unfused", n, t, 5 * fl});
      }
      if (const PeerResult *pr = peer.best(fmt::format("sgd_{}", n)))
        rows.push_back({"sgd momentum+wd",
                        "torch::optim::SGD::step (" + pr->setting + ")", n,
                        pr->median / 1e3, 5 * fl});
    }
  }
  std::printf("## kiln bench (CPU: %d threads)\n\n", pool.size());
  if (!peer.why_missing.empty())
    std::printf("LibTorch rows missing: %s\n\n", peer.why_missing.c_str());
  std::printf("### Fused vs unfused, effective bandwidth (each array read "
              "and written once)\n\n");
  print_table(rows);
  bench_train_step(peer, reps > 0 ? reps : 300);
  bench_compile_depth(depths);
  return 0;
}

} // namespace
} // namespace kiln

int main(int argc, char **argv) {
  try {
    return kiln::run(argc, argv);
  } catch (const kiln::Error &e) {
    std::fprintf(stderr, "kiln_bench: %s\n", e.what());
    return 1;
  }
}
