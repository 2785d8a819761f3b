// The CUDA backend against the reference interpreter. Without a GPU the
// execution tests skip with the reason make_cuda_backend_if_available gives;
// on the device machine (tools/gpu-check.sh) they run every op, the fused
// kernels, random graphs and a 20-step training loop.
#include "ir/interpreter.h"
#include "passes/fuse_elementwise.h"
#include "runtime/cuda_backend.h"
#include "tests/codegen/cuda_test_graphs.h"
#include "tests/support/random_graph.h"

#include <gtest/gtest.h>

#include <cmath>

namespace kiln {
namespace {

std::unique_ptr<Backend> cuda_or_reason(std::string &why) {
  return make_cuda_backend_if_available(&why);
}

#define REQUIRE_CUDA(backend)                                                  \
  std::string why_;                                                            \
  auto backend = cuda_or_reason(why_);                                         \
  if (!backend)                                                                \
  GTEST_SKIP() << "no CUDA device: " << why_

TEST(CudaBackend, AvailabilityHasAOneLineReason) {
  std::string why;
  auto b = make_cuda_backend_if_available(&why);
  if (b) {
    EXPECT_EQ(b->name(), "cuda");
  } else {
    EXPECT_FALSE(why.empty());
    EXPECT_EQ(why.find('\n'), std::string::npos) << why;
  }
}

// Inputs that every op accepts: integers in [1, 4] (no division by zero),
// one_hot labels in range, floats in [-2, 2].
std::vector<Array> inputs_for(const Graph &g, uint64_t seed) {
  std::vector<HostTensor> h = testing::random_inputs(g, seed);
  std::vector<Array> out;
  for (size_t i = 0; i < h.size(); ++i) {
    HostTensor &t = h[i];
    if (is_int(t.type.dtype))
      for (double &x : t.data)
        x = 1 + std::fmod(std::fabs(std::round(x * 7)), 3);
    out.push_back(Array::from_host(t));
  }
  return out;
}

void expect_close(const Array &got, const Array &want,
                  const std::string &what) {
  ASSERT_EQ(got.type(), want.type()) << what;
  double tol = got.type().dtype == DType::f32 ? 1e-4 : 1e-9;
  int bad = 0;
  for (int64_t i = 0; i < got.numel() && bad < 5; ++i) {
    double a = got.get(i), b = want.get(i);
    if (std::isnan(a) && std::isnan(b))
      continue;
    if (!(std::fabs(a - b) <= tol * (1 + std::fabs(b)))) {
      ADD_FAILURE() << what << " [" << i << "]: cuda " << a << ", interpreter "
                    << b;
      ++bad;
    }
  }
}

std::vector<Array> clone_all(const std::vector<Array> &in) {
  std::vector<Array> c;
  for (const Array &a : in)
    c.push_back(a.clone());
  return c;
}

void compare(Backend &cuda, const Graph &g, uint64_t seed = 1) {
  SCOPED_TRACE("graph @" + g.name);
  std::vector<Array> in = inputs_for(g, seed);
  std::vector<Array> a = clone_all(in), b = clone_all(in);
  auto ref = make_interpreter_backend()->compile(g);
  std::vector<Array> want = ref->run(b);
  auto exe = cuda.compile(g);
  std::vector<Array> got = exe->run(a);
  cuda_sync_to_host(cuda);
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k)
    expect_close(got[k], want[k], fmt::format("output {}", k));
  for (size_t i = 0; i < in.size(); ++i)
    expect_close(a[i], b[i], fmt::format("input {} after the run", i));
}

TEST(CudaExec, EveryStandaloneOpMatchesTheInterpreter) {
  REQUIRE_CUDA(cuda);
  for (auto &ng : testing::standalone_op_graphs())
    compare(*cuda, *ng.graph);
}

TEST(CudaExec, FusedKernelsMatchTheInterpreter) {
  REQUIRE_CUDA(cuda);
  for (auto &ng : testing::fused_graphs())
    compare(*cuda, *ng.graph);
}

TEST(CudaExec, RandomGraphsMatchTheInterpreter) {
  REQUIRE_CUDA(cuda);
  for (uint64_t seed = 1; seed <= 20; ++seed)
    for (DType dt : {DType::f32, DType::f64}) {
      testing::RandomGraphOptions opt;
      opt.dtype = dt;
      auto g = testing::random_graph(seed, opt);
      compare(*cuda, *g, seed);
      run_fuse_elementwise(*g);
      compare(*cuda, *g, seed);
    }
}

// iotas in elementwise bodies and reduction prologues, reduction epilogues
// and extra outputs in every reduction layout (passes/fuse_elementwise.cpp's
// contract): each extra element is written exactly once, so a missed or
// doubled point shows up against the interpreter.
TEST(CudaExec, ContractExtensionsMatchTheInterpreter) {
  REQUIRE_CUDA(cuda);
  for (auto &ng : testing::contract_graphs())
    compare(*cuda, *ng.graph);
}

TEST(CudaExec, IotaLossAndBiasGradMatchTheInterpreterFusedAndNot) {
  REQUIRE_CUDA(cuda);
  auto g = testing::iota_loss_graph();
  compare(*cuda, *g);
  run_fuse_elementwise(*g);
  compare(*cuda, *g);
}

// A softmax-regression training step: loss and in-place SGD-momentum
// updates of w, b and their velocities in one multi-tensor kernel.
std::unique_ptr<Graph> step_graph() {
  auto g = std::make_unique<Graph>("softmax_regression_step");
  Builder b(*g);
  Value *x = g->add_input("x", {DType::f32, {64, 784}});
  Value *y = g->add_input("y", {DType::i32, {64}});
  Value *lr = g->add_input("lr", {DType::f32, {}});
  Value *w = g->add_input("w", {DType::f32, {784, 10}}, InputKind::param);
  Value *bias = g->add_input("b", {DType::f32, {10}}, InputKind::param);
  Value *vw = g->add_input("vw", {DType::f32, {784, 10}}, InputKind::state);
  Value *vb = g->add_input("vb", {DType::f32, {10}}, InputKind::state);
  Value *z = b.add(b.matmul(x, w), bias);
  Value *oh = b.one_hot(y, 10);
  Value *loss = b.neg(b.mean(b.sum(b.mul(b.log_softmax(z), oh), {1})));
  Value *dz = b.mul(b.sub(b.softmax(z), oh), 1.0 / 64);
  Value *gw = b.matmul(b.transpose(x), dz);
  Value *gb = b.sum(dz, {0});
  Value *upd = testing::fused(
      *g, "multi_tensor", {lr, w, vw, gw, bias, vb, gb},
      [](Builder &bb, const std::vector<Value *> &a) {
        std::vector<Value *> r;
        for (int p = 0; p < 2; ++p) {
          Value *W = a[1 + 3 * p], *V = a[2 + 3 * p], *G = a[3 + 3 * p];
          Value *nv = bb.add(bb.add(bb.mul(V, 0.9), G), bb.mul(W, 5e-4));
          r.push_back(bb.sub(W, bb.mul(nv, a[0])));
          r.push_back(nv);
        }
        return r;
      },
      Attrs{{"chains", std::vector<int64_t>{2, 2}}});
  const Node &f = *g->nodes().back();
  (void)upd;
  g->add_output(loss);
  g->add_output(f.results[0], 3);
  g->add_output(f.results[1], 5);
  g->add_output(f.results[2], 4);
  g->add_output(f.results[3], 6);
  return g;
}

TEST(CudaExec, TrainingStepMatchesTheInterpreterFor20Steps) {
  REQUIRE_CUDA(cuda);
  auto g = step_graph();
  run_fuse_elementwise(*g);
  std::vector<Array> init = inputs_for(*g, 7);
  for (int64_t i = 0; i < init[3].numel(); ++i)
    init[3].set(i, init[3].get(i) * 0.01);
  std::vector<Array> a = clone_all(init), b = clone_all(init);
  auto exe = cuda->compile(*g);
  auto ref = make_interpreter_backend()->compile(*g);
  for (int step = 0; step < 20; ++step) {
    SCOPED_TRACE(fmt::format("step {}", step));
    // New data each step through the same host Arrays (data is re-staged).
    std::vector<Array> batch = inputs_for(*g, 100 + step);
    for (int k : {0, 1}) {
      std::memcpy(a[k].data(), batch[k].data(), batch[k].bytes());
      std::memcpy(b[k].data(), batch[k].data(), batch[k].bytes());
    }
    a[2].set(0, 0.1);
    b[2].set(0, 0.1);
    auto got = exe->run(a);
    auto want = ref->run(b);
    expect_close(got[0], want[0], "loss");
    // Aliased outputs are the input Arrays themselves.
    EXPECT_TRUE(got[1].shares_storage(a[3]));
  }
  cuda_sync_to_host(*cuda);
  for (int k = 3; k <= 6; ++k)
    expect_close(a[k], b[k], fmt::format("param/state {}", k));
}

} // namespace
} // namespace kiln
