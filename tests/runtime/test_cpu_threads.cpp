// CPU results are bitwise independent of the thread count (issue 15 item
// 16): the same graph and inputs give the same bits with a pool of 1, 2 or 3
// threads. Each pool size is set up as KILN_NUM_THREADS would do it: a pool
// of that size and OpenBLAS told to use as many threads.
#include "cpu_test_util.h"

#include "passes/autodiff.h"
#include "passes/pass_manager.h"
#include "runtime/cpu_host_ops.h"

#include <fmt/format.h>

#include <array>
#include <cstring>
#include <random>

namespace kiln {
namespace {

// The bits of every output of `steps` runs of `g` (outputs aliasing inputs
// update them in place, as a training step does) on a CPU pool of
// `threads`, starting from `init`.
std::vector<std::vector<Array>> run_with_threads(const Graph &g,
                                                 const std::vector<Array> &init,
                                                 int threads, int steps) {
  set_blas_threads(threads); // what the global pool does for KILN_NUM_THREADS
  auto exe = make_cpu_backend(threads)->compile(g);
  std::vector<Array> in = test::clone_all(init);
  std::vector<std::vector<Array>> all;
  for (int s = 0; s < steps; ++s)
    all.push_back(test::clone_all(exe->run(in)));
  all.push_back(test::clone_all(in)); // the updated params and state
  return all;
}

void expect_bitwise_equal(const std::vector<std::vector<Array>> &a,
                          const std::vector<std::vector<Array>> &b,
                          const std::string &what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t s = 0; s < a.size(); ++s) {
    ASSERT_EQ(a[s].size(), b[s].size());
    for (size_t i = 0; i < a[s].size(); ++i) {
      ASSERT_EQ(a[s][i].type(), b[s][i].type());
      size_t bytes = a[s][i].type().bytes();
      int64_t first = -1, count = 0;
      const auto *pa = static_cast<const unsigned char *>(a[s][i].data());
      const auto *pb = static_cast<const unsigned char *>(b[s][i].data());
      size_t es =
          bytes / static_cast<size_t>(std::max<int64_t>(1, a[s][i].numel()));
      for (int64_t e = 0; e < a[s][i].numel(); ++e)
        if (std::memcmp(pa + e * es, pb + e * es, es) != 0) {
          if (first < 0)
            first = e;
          ++count;
        }
      EXPECT_EQ(count, 0) << what << ": "
                          << (s + 1 == a.size()
                                  ? std::string("final input ")
                                  : "step " + std::to_string(s) + " output ")
                          << i << " differs in " << count << " elements, first "
                          << first << " ("
                          << (first >= 0 ? a[s][i].get(first) : 0) << " vs "
                          << (first >= 0 ? b[s][i].get(first) : 0) << ")";
    }
  }
}

// The MLP `kiln train` builds (784-256-128-10, relu), mean cross-entropy,
// SGD with momentum and weight decay updating params and momenta in place.
std::unique_ptr<Graph> mlp_step(int64_t batch) {
  return test::mlp_step_graph(batch, {784, 256, 128, 10});
}

std::vector<Array> mlp_inputs(const Graph &g, int64_t classes) {
  return test::mlp_step_inputs(g, classes, 7);
}

void pipeline(Graph &g) {
  PassOptions opts;
  opts.read_env = false;
  opts.verify_each = true;
  PassManager pm(opts);
  pm.add_pipeline(default_pipeline());
  pm.run(g);
}

TEST(CpuThreads, MlpTrainingStepIsBitwiseIndependentOfThreadCount) {
  for (int64_t batch : {64, 200}) {
    auto g = mlp_step(batch);
    pipeline(*g);
    std::vector<Array> init = mlp_inputs(*g, 10);
    auto one = run_with_threads(*g, init, 1, 4);
    for (int t : {2, 3})
      expect_bitwise_equal(one, run_with_threads(*g, init, t, 4),
                           "batch " + std::to_string(batch) + ", 1 vs " +
                               std::to_string(t) + " threads");
  }
}

// Large elementwise chains and reductions (sum, mean, amax, softmax,
// log_softmax over either axis or all) of random shapes, with transcendental
// functions whose vectorized and scalar code differ in the last bits, so
// that any work split that depends on the thread count shows.
std::unique_ptr<Graph> reduction_graph(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  int64_t R = pick(40, 700), C = pick(40, 3000);
  auto g = std::make_unique<Graph>("reductions");
  Builder b(*g);
  Value *x = g->add_input("x", {DType::f32, {R, C}});
  Value *z = g->add_input("z", {DType::f32, {R, C}});
  std::vector<Value *> full = {x, z};
  for (int i = 0; i < 10; ++i) {
    Value *a = full[pick(0, static_cast<int64_t>(full.size()) - 1)];
    Value *c = full[pick(0, static_cast<int64_t>(full.size()) - 1)];
    Value *r = nullptr;
    switch (pick(0, 7)) {
    case 0:
      r = b.exp(b.tanh(a));
      break;
    case 1:
      r = b.log(b.add(b.abs(a), 1.0));
      break;
    case 2:
      r = b.sub(a, b.mean(c, {0}, true));
      break;
    case 3:
      r = b.mul(a, b.sum(b.exp(b.tanh(c)), {1}, true));
      break;
    case 4:
      r = b.softmax(a, pick(0, 1));
      break;
    case 5:
      r = b.log_softmax(b.add(a, c), pick(0, 1));
      break;
    case 6:
      r = b.sub(a, b.amax(b.sigmoid(c), {pick(0, 1)}, true));
      break;
    default:
      r = b.div(b.mul(a, c), b.add(b.mean(b.abs(a)), 1.0));
      break;
    }
    full.push_back(r);
  }
  g->add_output(full.back());
  g->add_output(b.sum(full[full.size() - 2]));
  g->add_output(b.mean(b.exp(b.tanh(full[full.size() - 3])), {1}));
  g->add_output(b.sum(b.log(b.add(b.abs(full[full.size() - 4]), 1.0)), {0}));
  return g;
}

TEST(CpuThreads, ReductionGraphsAreBitwiseIndependentOfThreadCount) {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    auto g = reduction_graph(seed);
    auto fused = g->clone();
    pipeline(*fused);
    std::vector<Array> init = test::random_inputs(*g, 11, -3, 3);
    for (const Graph *gr : {g.get(), fused.get()}) {
      auto one = run_with_threads(*gr, init, 1, 1);
      for (int t : {2, 3})
        expect_bitwise_equal(one, run_with_threads(*gr, init, t, 1),
                             "seed " + std::to_string(seed) +
                                 (gr == g.get() ? " unfused" : " fused") +
                                 ", 1 vs " + std::to_string(t) + " threads");
    }
  }
}

// A standalone matmul of each MLP shape (forward and both backward forms).
TEST(CpuThreads, MatmulsAreBitwiseIndependentOfThreadCount) {
  struct Case {
    int64_t m, k, n;
    bool ta, tb;
  };
  for (Case c : {Case{64, 784, 256, false, false},
                 {200, 256, 128, false, true},
                 {784, 64, 256, true, false},
                 {513, 999, 77, false, false},
                 {3, 5000, 700, false, false}}) {
    auto g = std::make_unique<Graph>("mm");
    Builder b(*g);
    Value *a = g->add_input(
        "a", {DType::f32, c.ta ? Shape{c.k, c.m} : Shape{c.m, c.k}});
    Value *w = g->add_input(
        "w", {DType::f32, c.tb ? Shape{c.n, c.k} : Shape{c.k, c.n}});
    g->add_output(
        b.matmul(c.ta ? b.transpose(a) : a, c.tb ? b.transpose(w) : w));
    std::vector<Array> init = test::random_inputs(*g, 5, -1, 1);
    auto one = run_with_threads(*g, init, 1, 1);
    for (int t : {2, 3, 5})
      expect_bitwise_equal(
          one, run_with_threads(*g, init, t, 1),
          fmt::format("matmul {}x{}x{} 1 vs {} threads", c.m, c.k, c.n, t));
  }
}

// The GEMM tiling: tiles cover C, and every product of the MLP step worth
// two threads is split.
TEST(CpuThreads, GemmTilesCoverTheProduct) {
  for (auto [m, n, k] : {std::array<int64_t, 3>{64, 256, 784},
                         {784, 256, 64},
                         {64, 256, 128},
                         {1000, 1000, 1000},
                         {3, 5000, 700},
                         {1, 1, 1},
                         {0, 5, 5}}) {
    GemmTiles t = gemm_tiles(m, n, k);
    SCOPED_TRACE(fmt::format("{}x{}x{}", m, n, k));
    EXPECT_GE(t.nm * t.tm, m);
    EXPECT_GE(t.nn * t.tn, n);
    EXPECT_LT((t.nm - 1) * t.tm, std::max<int64_t>(m, 1));
    EXPECT_LT((t.nn - 1) * t.tn, std::max<int64_t>(n, 1));
    EXPECT_LE(t.nm * t.nn, 64);
    if (static_cast<double>(m) * static_cast<double>(n) * k >= (1 << 21)) {
      EXPECT_GE(t.nm * t.nn, 2);
    }
  }
}

} // namespace
} // namespace kiln
