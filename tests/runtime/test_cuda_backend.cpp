// The CUDA backend against the reference interpreter. Without a GPU the
// execution tests skip with the reason make_cuda_backend_if_available gives;
// on the device machine (tools/gpu-check.sh) they run every op, the fused
// kernels, random graphs and a 20-step training loop.
#include "codegen/cuda_emitter.h"
#include "ir/interpreter.h"
#include "passes/fuse_elementwise.h"
#include "runtime/cuda_backend.h"
#include "runtime/cuda_cublas.h"
#include "tests/codegen/cuda_test_graphs.h"
#include "tests/support/random_graph.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <optional>
#include <string_view>
#include <tuple>

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

// ---- issue 11, item 3: cases that no test covered --------------------------

// Matmuls with a zero dimension: k == 0 is a sum of nothing (zeros, as on
// the interpreter), m or n == 0 an empty result; cuBLAS itself rejects
// lda = 0 (status 7), so the backend must not call it.
TEST(CudaExec, ZeroSizeMatmulsMatchTheInterpreter) {
  REQUIRE_CUDA(cuda);
  std::vector<std::pair<Shape, Shape>> cases = {
      {{2, 0}, {0, 3}},       {{2, 4}, {4, 0}},    {{0, 4}, {4, 3}},
      {{3, 2, 0}, {3, 0, 5}}, {{0, 2, 3}, {3, 4}}, {{2, 1, 3, 0}, {4, 0, 2}}};
  for (auto &[sa, sb] : cases) {
    auto g = std::make_unique<Graph>("zero_size");
    Builder b(*g);
    Value *x = g->add_input("a", {DType::f32, sa});
    Value *y = g->add_input("b", {DType::f32, sb});
    // + 1 after: a kernel reads the GEMM's result, so unwritten memory
    // (poisoned by the emulator) would show.
    g->add_output(b.add(b.matmul(x, y), 1.0));
    g->add_output(b.matmul(x, y));
    compare(*cuda, *g);
  }
}

// Other ops on zero-size tensors: elementwise, reductions over an empty
// axis (zeros) and of an empty tensor along a non-empty one, a zero-size
// param updated in place.
TEST(CudaExec, ZeroSizeElementwiseAndReductionsMatchTheInterpreter) {
  REQUIRE_CUDA(cuda);
  auto g = std::make_unique<Graph>("zero_size_ops");
  Builder b(*g);
  Value *x = g->add_input("x", {DType::f32, {2, 0}});
  Value *y = g->add_input("y", {DType::f32, {0, 3}});
  Value *w = g->add_input("w", {DType::f32, {0}}, InputKind::param);
  g->add_output(b.exp(x));
  g->add_output(b.sum(x, {1}));
  g->add_output(b.sum(y, {0}));
  g->add_output(b.sum(y, {1}));
  g->add_output(b.add(b.sum(x), 1.0));
  g->add_output(b.amax(y, {1}));
  g->add_output(b.mul(w, 2.0), 2);
  compare(*cuda, *g);
  auto f = g->clone();
  run_fuse_elementwise(*f);
  compare(*cuda, *f);
}

// A label outside [0, num_classes) is an error before the step runs, as on
// the interpreter, not a row of zeros.
TEST(CudaExec, OutOfRangeLabelIsAnErrorLikeOnTheInterpreter) {
  REQUIRE_CUDA(cuda);
  auto g = std::make_unique<Graph>("labels");
  Builder b(*g);
  Value *y = g->add_input("y", {DType::i32, {4}});
  g->add_output(b.sum(b.one_hot(y, 3), {1}));
  for (int bad : {5, 3, -1}) {
    SCOPED_TRACE(fmt::format("label {}", bad));
    std::vector<Array> in = {Array(Type{DType::i32, {4}})};
    in[0].set(0, 0);
    in[0].set(1, 2);
    in[0].set(2, bad);
    in[0].set(3, 1);
    std::vector<Array> ref_in = clone_all(in);
    EXPECT_THROW(make_interpreter_backend()->compile(*g)->run(ref_in), Error);
    auto exe = cuda->compile(*g);
    try {
      exe->run(in);
      ADD_FAILURE() << "the CUDA backend accepted label " << bad;
    } catch (const Error &e) {
      EXPECT_NE(std::string(e.what()).find(fmt::format(
                    "element 2 is {}, outside [0, 3), the range of the "
                    "one_hot {{num_classes = 3}} that reads it",
                    bad)),
                std::string::npos)
          << e.what();
    }
    // In-range labels still run.
    in[0].set(2, 0);
    EXPECT_EQ(exe->run(in)[0].get(2), 1);
  }
}

// Batched matmul: every broadcast of the batch axes (one side shared, a
// size-1 axis, both sides broadcast so no single strided call fits) and
// transposed operands, f32 and f64.
TEST(CudaExec, BatchedMatmulEveryBroadcastAndTransposeMatchesTheInterpreter) {
  REQUIRE_CUDA(cuda);
  std::vector<std::pair<Shape, Shape>> cases = {
      {{4, 2, 3}, {4, 3, 5}},       {{4, 2, 3}, {3, 5}},
      {{2, 3}, {4, 3, 5}},          {{1, 2, 3}, {4, 3, 5}},
      {{4, 2, 3}, {1, 3, 5}},       {{4, 1, 2, 3}, {3, 3, 5}},
      {{2, 1, 2, 3}, {1, 3, 3, 5}}, {{2, 3, 2, 3}, {3, 3, 5}},
      {{1, 1, 2, 3}, {2, 3, 3, 5}}, {{3, 1, 1, 2, 3}, {1, 2, 2, 3, 5}}};
  for (DType dt : {DType::f32, DType::f64})
    for (auto &[sa, sb] : cases)
      for (int tr = 0; tr < 4; ++tr) {
        SCOPED_TRACE(fmt::format("{} x {}, transposed {}", shape_str(sa),
                                 shape_str(sb), tr));
        auto g = std::make_unique<Graph>("batched_matmul");
        Builder b(*g);
        auto swapped = [](Shape s) {
          std::swap(s[s.size() - 1], s[s.size() - 2]);
          return s;
        };
        // tr & 1: a is given transposed, tr & 2: b.
        Value *x = g->add_input("a", {dt, tr & 1 ? swapped(sa) : sa});
        Value *y = g->add_input("b", {dt, tr & 2 ? swapped(sb) : sb});
        if (tr & 1)
          x = b.transpose(x);
        if (tr & 2)
          y = b.transpose(y);
        g->add_output(b.matmul(x, y));
        compare(*cuda, *g, static_cast<uint64_t>(tr + 1));
      }
}

// A cuBLAS dimension beyond int is an error when the graph is compiled
// (nothing of that size is allocated), naming the matmul and the size.
TEST(CudaExec, GemmDimensionBeyondIntIsRejectedAtCompileTime) {
  REQUIRE_CUDA(cuda);
  int64_t big = int64_t{1} << 31;
  std::vector<std::tuple<Shape, Shape, std::string>> cases = {
      {{2, big}, {big, 2}, "k = 2147483648"},
      {{big, 1}, {1, 2}, "m = 2147483648"},
      {{2, 1}, {1, big}, "n = 2147483648"},
      {{big, 1, 1}, {1, 1}, "the batch count = 2147483648"}};
  for (auto &[sa, sb, what] : cases) {
    auto g = std::make_unique<Graph>("huge");
    Builder b(*g);
    Value *x = g->add_input("a", {DType::f32, sa});
    Value *y = g->add_input("b", {DType::f32, sb});
    g->add_output(b.matmul(x, y));
    try {
      cuda->compile(*g);
      ADD_FAILURE() << "compiled a matmul with " << what;
    } catch (const Error &e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
      EXPECT_NE(msg.find("int range"), std::string::npos) << msg;
    }
  }
}

// A training step replayed (a CUDA graph from the second run on) against
// the interpreter, with `edit` applied to both sides' inputs before each
// step; params and state are compared after every step through the
// Backend's host/device contract (sync_to_host).
void replay_against_interpreter(
    Backend &cuda, int steps,
    const std::function<void(int step, std::vector<Array> &, bool is_cuda)>
        &edit) {
  auto g = step_graph();
  run_fuse_elementwise(*g);
  std::vector<Array> init = inputs_for(*g, 7);
  for (int64_t i = 0; i < init[3].numel(); ++i)
    init[3].set(i, init[3].get(i) * 0.01);
  std::vector<Array> a = clone_all(init), b = clone_all(init);
  auto exe = cuda.compile(*g);
  auto ref = make_interpreter_backend()->compile(*g);
  for (int step = 0; step < steps; ++step) {
    SCOPED_TRACE(fmt::format("step {}", step));
    std::vector<Array> batch = inputs_for(*g, 100 + step);
    for (int k : {0, 1}) {
      std::memcpy(a[k].data(), batch[k].data(), batch[k].bytes());
      std::memcpy(b[k].data(), batch[k].data(), batch[k].bytes());
    }
    a[2].set(0, 0.1);
    b[2].set(0, 0.1);
    edit(step, a, true);
    edit(step, b, false);
    auto got = exe->run(a);
    auto want = ref->run(b);
    expect_close(got[0], want[0], "loss");
    cuda.sync_to_host();
    for (int k = 3; k <= 6; ++k)
      expect_close(a[k], b[k], fmt::format("param/state {}", k));
    if (::testing::Test::HasFailure())
      return;
  }
}

TEST(CudaExec, LearningRateChangedEveryStepUnderGraphReplay) {
  REQUIRE_CUDA(cuda);
  replay_against_interpreter(
      *cuda, 6, [](int step, std::vector<Array> &in, bool) {
        in[2].set(0, 0.3 / (1 + step)); // a new lr every step
      });
}

// A param replaced by a new host Array between steps (a user assigning
// another tensor): the step binds the new Array (copied in) and updates it.
TEST(CudaExec, ParameterArrayReplacedBetweenStepsIsUsed) {
  REQUIRE_CUDA(cuda);
  Array fresh_a, fresh_b;
  replay_against_interpreter(
      *cuda, 6, [&](int step, std::vector<Array> &in, bool is_cuda) {
        if (step != 3)
          return;
        Array w(in[3].type());
        for (int64_t i = 0; i < w.numel(); ++i)
          w.set(i, std::sin(0.37 * static_cast<double>(i)) * 0.02);
        in[3] = w;
        (is_cuda ? fresh_a : fresh_b) = w;
      });
  // The replacement itself was updated in place by the later steps.
  ASSERT_TRUE(fresh_a.defined());
  expect_close(fresh_a, fresh_b, "replaced param");
}

// A host edit of a param and a state buffer, announced with
// mark_host_modified, is what the next step starts from.
TEST(CudaExec, HostEditAfterMarkHostModifiedIsUsed) {
  REQUIRE_CUDA(cuda);
  Backend &be = *cuda;
  replay_against_interpreter(
      be, 6, [&](int step, std::vector<Array> &in, bool is_cuda) {
        if (step != 2 && step != 4)
          return;
        for (int k : {3, 5}) { // w and its momentum
          for (int64_t i = 0; i < in[k].numel(); ++i)
            in[k].set(i, in[k].get(i) * -0.5 + 0.001);
          if (is_cuda)
            be.mark_host_modified(in[k]);
        }
      });
}

// The registry of device copies lets go of an Array no executable binds any
// more: a replaced param's device copy is written back and freed (not kept
// for the process's life), and destroying the executable writes every
// param/state back and frees them.
TEST(CudaExec, DeviceCopiesAreReleasedWithTheirLastBinding) {
  REQUIRE_CUDA(cuda);
  auto g = step_graph();
  run_fuse_elementwise(*g);
  std::vector<Array> init = inputs_for(*g, 7);
  for (int64_t i = 0; i < init[3].numel(); ++i)
    init[3].set(i, init[3].get(i) * 0.01);
  std::vector<Array> a = clone_all(init), b = clone_all(init);
  auto exe = cuda->compile(*g);
  auto ref = make_interpreter_backend()->compile(*g);
  auto step = [&](int s) {
    std::vector<Array> batch = inputs_for(*g, 100 + s);
    for (int k : {0, 1}) {
      std::memcpy(a[k].data(), batch[k].data(), batch[k].bytes());
      std::memcpy(b[k].data(), batch[k].data(), batch[k].bytes());
    }
    a[2].set(0, 0.1);
    b[2].set(0, 0.1);
    exe->run(a);
    ref->run(b);
  };
  step(0);
  step(1);
  EXPECT_EQ(cuda_resident_count(*cuda), 4u); // w, b and their momenta
  Array old_w = a[3];
  a[3] = b[3].clone(); // a new host Array with the same values
  step(2);
  EXPECT_EQ(cuda_resident_count(*cuda), 4u) << "the replaced w is still held";
  exe.reset();
  EXPECT_EQ(cuda_resident_count(*cuda), 0u);
  // Written back on release, without a sync_to_host.
  for (int k = 3; k <= 6; ++k)
    expect_close(a[k], b[k], fmt::format("param/state {}", k));
  EXPECT_NE(old_w.get(0), a[3].get(0));
}

// ---- issue 11, item 4: CUDA fixes found by reading -------------------------

bool on_emulated_device() {
  const char *d = std::getenv("KILN_CUDA_DRIVER");
  return d && std::string_view(d).find("cudaemu") != std::string_view::npos;
}

// Sets (or unsets, with nullptr) an environment variable for a scope.
class ScopedEnv {
public:
  ScopedEnv(const char *name, const char *value) : name_(name) {
    if (const char *old = std::getenv(name))
      old_ = old;
    if (value)
      setenv(name, value, 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_, old_->c_str(), 1);
    else
      unsetenv(name_);
  }

private:
  const char *name_;
  std::optional<std::string> old_;
};

std::unique_ptr<Graph> matmul_graph() {
  auto g = std::make_unique<Graph>("matmul");
  Builder b(*g);
  Value *x = g->add_input("a", {DType::f32, {5, 7}});
  Value *y = g->add_input("b", {DType::f32, {7, 3}});
  g->add_output(b.matmul(x, y));
  return g;
}

// Errors name cuBLAS statuses (the driver's come from cuGetErrorName,
// NVRTC's from nvrtcGetErrorString).
TEST(CudaBackend, CublasStatusesHaveNames) {
  EXPECT_STREQ(cuda::cublas_status_name(7), "CUBLAS_STATUS_INVALID_VALUE");
  EXPECT_STREQ(cuda::cublas_status_name(13), "CUBLAS_STATUS_EXECUTION_FAILED");
  EXPECT_EQ(cuda::cublas_status_name(12345), nullptr);
}

// cuBLAS's default math, not CUBLAS_PEDANTIC_MATH (which forbids the fast
// paths); pedantic only on request (CudaOptions::deterministic or
// KILN_CUDA_DETERMINISTIC=1). cublasMath_t: CUBLAS_DEFAULT_MATH = 0,
// CUBLAS_PEDANTIC_MATH = 2, CUBLAS_TF32_TENSOR_OP_MATH = 3.
TEST(CudaExec, CublasUsesDefaultMathUnlessDeterministic) {
  ScopedEnv no_env("KILN_CUDA_DETERMINISTIC", nullptr);
  REQUIRE_CUDA(cuda);
  EXPECT_EQ(cuda_cublas_math_mode(*cuda), 0);
  compare(*cuda, *matmul_graph());
  std::string why;
  CudaOptions o;
  o.deterministic = true;
  auto det = make_cuda_backend_if_available(&why, o);
  ASSERT_TRUE(det) << why;
  EXPECT_EQ(cuda_cublas_math_mode(*det), 2);
  compare(*det, *matmul_graph());
  o.allow_tf32 = true; // TF32 is an explicit choice: it wins
  auto tf32 = make_cuda_backend_if_available(&why, o);
  ASSERT_TRUE(tf32) << why;
  EXPECT_EQ(cuda_cublas_math_mode(*tf32), 3);
  ScopedEnv env("KILN_CUDA_DETERMINISTIC", "1");
  auto by_env = make_cuda_backend_if_available(&why);
  ASSERT_TRUE(by_env) << why;
  EXPECT_EQ(cuda_cublas_math_mode(*by_env), 2);
}

// A failed driver query is an error, not a silent default (an SM count of
// 1 capped every grid at 16 blocks).
TEST(CudaExec, FailedSmCountQueryIsAnError) {
  REQUIRE_CUDA(cuda);
  if (!on_emulated_device())
    return; // only the emulated driver can be made to fail the query
  ScopedEnv fail("KILN_CUDAEMU_FAIL_SM_COUNT", "1");
  std::string why;
  EXPECT_EQ(make_cuda_backend_if_available(&why), nullptr);
  EXPECT_NE(why.find("cuDeviceGetAttribute (multiprocessor count): "
                     "CUDA_ERROR_NOT_SUPPORTED"),
            std::string::npos)
      << why;
}

// KILN_CUDA_SYNC=1: a synchronisation after every launch, so a failing
// kernel is named in the error (not found at the end of the step). On the
// emulated device a kernel is made to fail (every full-warp shuffle mask
// halved); on a GPU the sync mode must still give the same results.
TEST(CudaExec, SyncAfterEveryLaunchNamesTheFailingKernel) {
  ScopedEnv sync("KILN_CUDA_SYNC", "1");
  REQUIRE_CUDA(cuda);
  auto graph = [](int64_t cols) {
    auto g = std::make_unique<Graph>("row_sums");
    Builder b(*g);
    Value *x = g->add_input("x", {DType::f32, {8, cols}});
    g->add_output(b.exp(b.mul(b.sum(x, {1}), 0.01)));
    return g;
  };
  compare(*cuda, *graph(100)); // and with several steps:
  compare(*cuda, *step_graph());
  if (!on_emulated_device())
    return;
  // Another shape than above, so that no kernel cache returns the good
  // kernel.
  auto g = graph(101);
  std::unique_ptr<Executable> exe;
  {
    ScopedEnv inject("KILN_CUDAEMU_INJECT", "halve_shfl_mask");
    exe = cuda->compile(*g);
  }
  std::vector<Array> in = inputs_for(*g, 1);
  try {
    exe->run(in);
    ADD_FAILURE() << "a kernel with halved shuffle masks ran";
  } catch (const Error &e) {
    std::string m = e.what();
    EXPECT_NE(m.find("cuda: kernel kiln_k"), std::string::npos) << m;
    EXPECT_NE(m.find("(KILN_CUDA_SYNC=1): CUDA_ERROR_LAUNCH_FAILED"),
              std::string::npos)
        << m;
  }
}

// A backend held by a static (as the frontend's default backend is) is
// released before the CUDA libraries' exit handlers run (the emulated
// cuBLAS aborts on a handle destroyed after its own), and the process
// exits 0.
TEST(CudaExec, BackendHeldByAStaticIsShutDownBeforeTheLibrariesAtExit) {
  REQUIRE_CUDA(cuda);
  cuda.reset();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        static std::unique_ptr<Backend> held;
        static std::unique_ptr<Executable> exe;
        held = make_cuda_backend_if_available();
        if (!held)
          std::exit(3);
        auto g = matmul_graph();
        exe = held->compile(*g);
        std::vector<Array> in = inputs_for(*g, 1);
        exe->run(in);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

// Reductions with little parallelism are split (codegen/cuda_emit_reduce.cpp):
// a bias gradient at batch 65536 ([65536, 10] -> [10], one column tile) and
// a full reduction of 1M elements (one row) reduce chunks of the axis in
// separate blocks into a scratch buffer, then a second kernel combines
// them. Standalone and fused (epilogues, extra outputs, iotas, i32, f64),
// against the interpreter; each graph's reduction must take the split path.
TEST(CudaExec, SplitReductionsMatchTheInterpreter) {
  REQUIRE_CUDA(cuda);
  using V = std::vector<Value *>;
  const DType f32 = DType::f32;
  std::vector<testing::NamedGraph> gs;
  auto one = [&](const std::string &name, Type t,
                 const std::function<Value *(Builder &, Value *)> &f) {
    auto g = std::make_unique<Graph>(name);
    Builder b(*g);
    g->add_output(f(b, g->add_input("x", t)));
    gs.push_back({name, std::move(g)});
  };
  one("bias_grad_65536x10", {f32, {65536, 10}},
      [](Builder &b, Value *x) { return b.sum(x, {0}); });
  one("sum_all_1m", {f32, {1 << 20}},
      [](Builder &b, Value *x) { return b.sum(x); });
  one("mean_middle_3x50000x5", {f32, {3, 50000, 5}},
      [](Builder &b, Value *x) { return b.mean(x, {1}, true); });
  one("amax_cols_70001x33", {f32, {70001, 33}},
      [](Builder &b, Value *x) { return b.amax(x, {0}); });
  one("sum_rows_2x300001", {DType::f64, {2, 300001}},
      [](Builder &b, Value *x) { return b.sum(x, {1}, true); });
  // The bias gradient fused as in training: the masked gradient as an
  // extra output.
  gs.push_back(testing::fused_graph(
      "fused_bias_grad_extra_65536x10", "reduction",
      {{f32, {65536, 10}}, {f32, {10}}, {f32, {65536, 10}}},
      [](Builder &b, const V &a) {
        Value *h = b.add(a[0], a[1]);
        Value *c = b.scalar(0, DType::f32);
        Value *m = b.where(b.gt(h, c), a[2], c);
        return V{b.sum(m, {0}, true), m};
      }));
  // A loss over everything: epilogue and an extra output.
  gs.push_back(testing::fused_graph(
      "fused_loss_epilogue_extra_1024x1024", "reduction",
      {{f32, {1024, 1024}}, {f32, {1024, 1024}}}, [](Builder &b, const V &a) {
        Value *p = b.mul(a[0], a[1]);
        Value *s = b.sum(p, {0, 1});
        return V{b.neg(b.div(s, b.scalar(1024.0, DType::f32))), p};
      }));
  // mean over long rows with an epilogue and the operand as the extra.
  gs.push_back(testing::fused_graph(
      "fused_long_rows_mean_log_2x200000", "reduction",
      {{f32, {2, 200000}}, {f32, {2, 1}}}, [](Builder &b, const V &a) {
        Value *e = b.exp(b.sub(a[0], a[1]));
        return V{b.log(b.mean(e, {1}, true)), e};
      }));
  // i32 count with an epilogue, over the rows of a column layout.
  gs.push_back(testing::fused_graph(
      "fused_i32_count_cols_40000x7", "reduction", {{f32, {40000, 7}}},
      [](Builder &b, const V &a) {
        Value *pos = b.cast(b.gt(a[0], b.scalar(0, DType::f32)), DType::i32);
        return V{b.mul(b.sum(pos, {0}), b.scalar(2, DType::i32))};
      }));
  // f64 amax over a middle axis with an iota prologue and an extra.
  gs.push_back(testing::fused_graph(
      "fused_f64_amax_iota_2x20000x33", "reduction",
      {{DType::f64, {2, 20000, 33}}}, [](Builder &b, const V &a) {
        Value *r = b.iota({DType::f64, {20000, 1}}, 0);
        Value *p = b.add(a[0], b.mul(r, b.scalar(1e-4, DType::f64)));
        return V{b.amax(p, {1}), p};
      }));
  for (auto &ng : gs) {
    SCOPED_TRACE(ng.name);
    int split = 0;
    for (const cuda::CudaKernel &k : cuda::emit_cuda_kernels(*ng.graph))
      split += !k.finish_name.empty();
    EXPECT_EQ(split, 1) << "the reduction is not split";
    compare(*cuda, *ng.graph);
  }
  // Small ones keep their one-kernel layouts.
  for (auto &ng : testing::contract_graphs())
    for (const cuda::CudaKernel &k : cuda::emit_cuda_kernels(*ng.graph))
      EXPECT_TRUE(k.finish_name.empty()) << ng.name;
}

} // namespace
} // namespace kiln
