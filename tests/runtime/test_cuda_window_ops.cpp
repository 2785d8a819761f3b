// The CUDA backend's 2-D window kernels (codegen/cuda_emitter.cpp,
// emit_layout: im2col, col2im, max_pool2d, max_pool2d_grad) against the
// reference interpreter on random geometries (ties and NaNs for the
// pools), and a conv2d + max-pool training graph through autodiff and the
// default pipeline. They run under ctest on the emulated device (label
// cudaemu) and skip without a device.
#include "ir/interpreter.h"
#include "passes/pass_manager.h"
#include "runtime/cuda_backend.h"
#include "window_test_util.h"

#include <gtest/gtest.h>

namespace kiln::test {
namespace {

#define REQUIRE_CUDA(backend)                                                  \
  std::string why_;                                                            \
  auto backend = make_cuda_backend_if_available(&why_);                        \
  if (!backend)                                                                \
  GTEST_SKIP() << "no CUDA device: " << why_

// Runs g on `cuda` and the interpreter; every output within tolerance.
void compare(Backend &cuda, const Graph &g, const std::vector<Array> &in,
             double tol) {
  SCOPED_TRACE("graph @" + g.name);
  std::vector<Array> a, b;
  for (const Array &x : in) {
    a.push_back(x.clone());
    b.push_back(x.clone());
  }
  std::vector<Array> want = make_interpreter_backend()->compile(g)->run(b);
  auto exe = cuda.compile(g);
  std::vector<Array> got = exe->run(a);
  cuda_sync_to_host(cuda);
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k)
    expect_window_close(got[k], want[k], fmt::format("output {}", k), tol, tol);
}

std::vector<WindowCase> random_cases(uint32_t seed, bool pool, DType dt,
                                     int count) {
  std::mt19937 rng(seed);
  std::vector<WindowCase> cases;
  for (int i = 0; i < count; ++i)
    cases.push_back(random_window_case(rng, pool, dt));
  return cases;
}

double tol_of(DType dt) { return dt == DType::f32 ? 1e-5 : 1e-12; }

TEST(CudaExec, WindowIm2colCol2imMatchTheInterpreter) {
  REQUIRE_CUDA(cuda);
  for (DType dt : {DType::f32, DType::f64}) {
    std::vector<WindowCase> cases = random_cases(11, false, dt, 16);
    // The CNN's 3x3 padding 1 convolutions.
    cases.push_back({dt, 2, 1, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, 1, false});
    cases.push_back({dt, 2, 4, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, false});
    auto g = window_cases_graph(cases, "im2col_col2im");
    compare(*cuda, *g, window_inputs(*g, 21, false, false), tol_of(dt));
  }
}

TEST(CudaExec, WindowMaxPoolAndGradMatchTheInterpreterWithTiesAndNaNs) {
  REQUIRE_CUDA(cuda);
  for (DType dt : {DType::f32, DType::f64})
    for (bool nans : {false, true}) {
      SCOPED_TRACE(nans ? "ties and NaNs" : "ties");
      std::vector<WindowCase> cases =
          random_cases(nans ? 31 : 41, true, dt, 16);
      cases.push_back({dt, 2, 3, 28, 28, 2, 2, 2, 2, 0, 0, 1, 1, 1, true});
      auto g = window_cases_graph(cases, "max_pool");
      compare(*cuda, *g, window_inputs(*g, nans ? 51 : 61, true, nans),
              tol_of(dt));
    }
}

TEST(CudaExec, WindowDecomposedConv2dTrainingGraphMatchesTheInterpreter) {
  // conv2d (groups 2, stride, dilation) -> relu -> max_pool2d -> weighted
  // sum; autodiff adds dx (col2im) and dw; the default pipeline turns the
  // convolution into im2col and GEMMs. The interpreter runs the graph
  // before the pipeline (native conv2d).
  REQUIRE_CUDA(cuda);
  for (DType dt : {DType::f32, DType::f64}) {
    auto g = std::make_unique<Graph>("conv_pool");
    Value *x = g->add_input("x", {dt, {2, 4, 10, 9}}, InputKind::param);
    Value *w = g->add_input("w", {dt, {6, 2, 3, 3}}, InputKind::param);
    Builder b(*g);
    Attrs ca;
    ca.set("stride", std::vector<int64_t>{2, 1});
    ca.set("padding", std::vector<int64_t>{1, 1});
    ca.set("dilation", std::vector<int64_t>{1, 2});
    ca.set("groups", int64_t{2});
    Value *y = b.relu(b.op(Op::Conv2d, {x, w}, ca));
    Attrs pa;
    pa.set("kernel", std::vector<int64_t>{2, 2});
    Value *p = b.op(Op::MaxPool2d, {y}, pa);
    Value *r = g->add_input("r", p->type);
    g->add_output(b.sum(b.mul(p, r)));
    PassOptions opts;
    opts.read_env = false;
    opts.verify_each = true;
    PassManager ad(opts);
    ad.add("autodiff");
    ad.run(*g);
    auto opt = g->clone();
    PassManager pm(opts);
    pm.add_pipeline(default_pipeline());
    pm.run(*opt);
    std::vector<Array> in = window_inputs(*g, 9, false, false);
    std::vector<Array> a, c;
    for (const Array &v : in) {
      a.push_back(v.clone());
      c.push_back(v.clone());
    }
    auto want = make_interpreter_backend()->compile(*g)->run(c);
    auto exe = cuda->compile(*opt);
    auto got = exe->run(a);
    cuda_sync_to_host(*cuda);
    ASSERT_EQ(got.size(), 3u);
    double tol = dt == DType::f32 ? 1e-4 : 1e-10;
    for (size_t k = 0; k < got.size(); ++k)
      expect_window_close(got[k], want[k], fmt::format("output {}", k), tol,
                          tol);
  }
}

} // namespace
} // namespace kiln::test
