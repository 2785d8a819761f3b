// Compile-time scaling guard (issue 15): autodiff and the default pipeline
// must stay near-linear in the graph's size. Absolute times flake on a
// shared machine, so the test compares, for a chain of n and of 4n
// elementwise nodes, the CPU time of this thread relative to a linear-time
// reference on the same graph (see AutodiffAndPipelineNearLinear). Filter:
// --gtest_filter='Scaling*'.
//
// DISABLED_Report100k prints the per-pass times of a 100,000-node chain
// (run it with --gtest_also_run_disabled_tests --gtest_filter='Scaling*').
#include "ir/builder.h"
#include "passes/autodiff.h"
#include "passes/pass.h"
#include "passes/pass_manager.h"

#include <gtest/gtest.h>

#include <ctime>
#include <iostream>

namespace kiln {
namespace {

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) +
         1e-9 * static_cast<double>(ts.tv_nsec);
}

// x * w, then n - 1 unary and binary elementwise ops (each binary one reads
// the param again), then a sum: the loss of a step with one param.
std::unique_ptr<Graph> chain(int n) {
  auto g = std::make_unique<Graph>("chain");
  Builder b(*g);
  Value *x = g->add_input("x", {DType::f32, {4, 3}});
  Value *w = g->add_input("w", {DType::f32, {4, 3}}, InputKind::param);
  Value *v = b.mul(x, w);
  for (int i = 1; i < n; ++i) {
    switch (i % 5) {
    case 0:
      v = b.tanh(v);
      break;
    case 1:
      v = b.mul(v, w);
      break;
    case 2:
      v = b.add(v, w);
      break;
    case 3:
      v = b.sigmoid(v);
      break;
    default:
      v = b.sub(v, w);
      break;
    }
  }
  g->add_output(b.sum(v, {}, false));
  return g;
}

struct Timed {
  double total = 0;     // autodiff + default pipeline, CPU seconds
  double reference = 0; // one Graph::clone of the graph after autodiff
  std::vector<std::pair<std::string, double>> passes; // CPU seconds each
};

Timed autodiff_and_pipeline(int n) {
  auto g = chain(n);
  PassOptions opts;
  opts.verify_each = false;
  opts.read_env = false;
  std::vector<const PassInfo *> passes = parse_pipeline(default_pipeline());
  passes.insert(passes.begin(), find_pass("autodiff"));
  Timed t;
  for (const PassInfo *p : passes) {
    PassManager pm(opts);
    pm.add(p->name);
    double t0 = thread_cpu_seconds();
    pm.run(*g);
    double dt = thread_cpu_seconds() - t0;
    t.total += dt;
    t.passes.emplace_back(std::string(p->name), dt);
    if (p->name == "autodiff") {
      // A linear-time reference on the same graph, the best of three:
      // cloning touches every node and value and hashes each, as the passes
      // do, so it slows down as much when the graph outgrows the caches.
      t.reference = 1e30;
      for (int rep = 0; rep < 3; ++rep) {
        double c0 = thread_cpu_seconds();
        auto copy = g->clone();
        t.reference = std::min(t.reference, thread_cpu_seconds() - c0);
      }
    }
  }
  return t;
}

// Near-linear: the time relative to a linear-time reference (cloning the
// same graph) stays about the same from n to 4n nodes. Raw times are not
// enough: between about 10k and 40k nodes the graph (4x the nodes after
// autodiff) outgrows the caches and every pass's cost per node doubles;
// the reference slows down likewise. Linear passes keep the relative cost
// (measured: 0.55-0.9x from 12k to 48k nodes); the passes before issue 15's
// fixes, quadratic in parts, gave 1.4-1.6x (20 s CPU at 100k nodes, now
// 1.3-1.7 s).
// Sanitizers change the cost of allocation (ASan's quarantine) unevenly
// between the passes and the reference: a looser bound there.
#if defined(__SANITIZE_ADDRESS__)
constexpr double kBound = 2.0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr double kBound = 2.0;
#else
constexpr double kBound = 1.15;
#endif
#else
constexpr double kBound = 1.15;
#endif

TEST(Scaling, AutodiffAndPipelineNearLinear) {
  const int n = 12000;
  // The best of two runs: a preempted run only gets slower.
  double rel_small = 1e30, rel_large = 1e30;
  for (int rep = 0; rep < 2; ++rep) {
    Timed s = autodiff_and_pipeline(n);
    rel_small = std::min(rel_small, s.total / s.reference);
    Timed l = autodiff_and_pipeline(4 * n);
    rel_large = std::min(rel_large, l.total / l.reference);
  }
  std::cout << "autodiff + default pipeline, in clones of the graph: "
            << rel_small << " for a chain of " << n << " nodes, " << rel_large
            << " for " << 4 * n << " (" << rel_large / rel_small << "x)\n";
  EXPECT_LT(rel_large, kBound * rel_small)
      << "autodiff + default pipeline grew faster than the graph: " << rel_small
      << " clones' time for a chain of " << n << " nodes, " << rel_large
      << " for " << 4 * n;
}

TEST(Scaling, DISABLED_Report100k) {
  for (int n : {10000, 40000, 100000}) {
    Timed t = autodiff_and_pipeline(n);
    std::cout << "chain of " << n << " nodes: autodiff + default pipeline "
              << t.total << " s CPU (a clone: " << t.reference << " s)\n";
    for (auto &[name, s] : t.passes)
      std::cout << "  " << name << ": " << s * 1e3 << " ms\n";
  }
}

} // namespace
} // namespace kiln
