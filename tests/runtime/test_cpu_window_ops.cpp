// The CPU backend's 2-D window host loops (runtime/cpu_window_ops.cpp:
// im2col, col2im, max_pool2d, max_pool2d_grad) against the reference
// interpreter on random geometries, and a whole conv2d + max-pool training
// graph through autodiff and the default pipeline (decompose-windows: im2col,
// GEMMs, col2im) against the interpreter's native conv2d.
#include "cpu_test_util.h"
#include "passes/pass_manager.h"
#include "runtime/cpu_window_ops.h"
#include "window_test_util.h"

namespace kiln::test {
namespace {

// f32 host loops add in f32 where the interpreter adds in f64.
double atol_of(DType d) { return d == DType::f32 ? 1e-5 : 1e-12; }
double rtol_of(DType d) { return d == DType::f32 ? 1e-5 : 1e-12; }

// Runs g on the CPU backend and the interpreter and compares every output.
void check_window_graph(const Graph &g, const std::vector<Array> &in,
                        const std::string &what, DType dt) {
  std::vector<Array> a = clone_all(in), b = clone_all(in);
  auto got = make_cpu_backend()->compile(g)->run(a);
  auto want = make_interpreter_backend()->compile(g)->run(b);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    expect_window_close(got[i], want[i], what + " output " + std::to_string(i),
                        rtol_of(dt), atol_of(dt));
}

TEST(CpuWindowOps, Im2colCol2imMatchTheInterpreterOnRandomGeometries) {
  std::mt19937 rng(20261201);
  for (int t = 0; t < 40; ++t)
    for (DType dt : {DType::f32, DType::f64}) {
      WindowCase k = random_window_case(rng, /*pool=*/false, dt);
      SCOPED_TRACE(k.str());
      auto g = im2col_col2im_graph(k);
      check_window_graph(*g, window_inputs(*g, 100 + t, false, false), k.str(),
                         dt);
    }
}

TEST(CpuWindowOps, Im2colCol2imFixedGeometries) {
  // The CNN's shapes (3x3, padding 1) and the corner cases: a 1x1 kernel,
  // padding on one side only, an image row narrower than the stride.
  std::vector<WindowCase> cases = {
      {DType::f32, 2, 1, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, 1, false},
      {DType::f32, 2, 8, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, false},
      {DType::f64, 1, 6, 5, 7, 1, 1, 2, 3, 0, 0, 1, 1, 3, false},
      {DType::f32, 3, 4, 6, 2, 3, 2, 1, 3, 2, 0, 2, 1, 2, false},
      {DType::f64, 1, 2, 4, 9, 2, 3, 3, 1, 0, 2, 2, 2, 1, false},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].str());
    auto g = im2col_col2im_graph(cases[i]);
    check_window_graph(*g, window_inputs(*g, 7 + i, false, false),
                       cases[i].str(), cases[i].dtype);
  }
}

TEST(CpuWindowOps, MaxPoolAndGradMatchTheInterpreterWithTiesAndNaNs) {
  std::mt19937 rng(77);
  for (int t = 0; t < 40; ++t)
    for (DType dt : {DType::f32, DType::f64}) {
      WindowCase k = random_window_case(rng, /*pool=*/true, dt);
      bool nans = t % 3 == 0;
      SCOPED_TRACE(k.str() + (nans ? " with NaNs" : " with ties"));
      auto g = max_pool_graph(k);
      check_window_graph(*g, window_inputs(*g, 300 + t, true, nans), k.str(),
                         dt);
    }
}

TEST(CpuWindowOps, MaxPool2x2Stride2MatchesTheInterpreterWithTiesAndNaNs) {
  // The CNN's pool (2x2, stride 2, no padding), its interior row pass; even
  // and odd sizes (an uncovered last row and column), ties and NaNs.
  int t = 0;
  for (auto [h, w] : {std::pair<int64_t, int64_t>{4, 6}, {5, 7}, {28, 28}})
    for (DType dt : {DType::f32, DType::f64})
      for (bool nans : {false, true}) {
        WindowCase k;
        k.dtype = dt;
        k.pool = true;
        k.n = 2;
        k.c = 3;
        k.h = h;
        k.w = w;
        k.kh = k.kw = k.sh = k.sw = 2;
        SCOPED_TRACE(k.str() + (nans ? " with NaNs" : " with ties"));
        auto g = max_pool_graph(k);
        check_window_graph(*g, window_inputs(*g, 900 + t++, true, nans),
                           k.str(), dt);
      }
}

TEST(CpuWindowOps, MaxPoolGradPicksTheFirstMaximumAndTheLastNaN) {
  // One 2x3 window: ties at taps 1 and 4 (the gradient goes to tap 1),
  // then NaNs at taps 2 and 5 (it goes to tap 5, the last NaN).
  Graph g;
  Value *x = g.add_input("x", {DType::f32, {1, 1, 2, 3}});
  Value *dy = g.add_input("dy", {DType::f32, {1, 1, 1, 1}});
  Builder b(g);
  Attrs a;
  a.set("kernel", std::vector<int64_t>{2, 3});
  g.add_output(b.op(Op::MaxPool2d, {x}, a));
  g.add_output(b.op(Op::MaxPool2dGrad, {x, dy}, a));
  auto cpu = make_cpu_backend()->compile(g);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (auto [vals, want] :
       {std::pair{std::vector<double>{0, 3, 1, 2, 3, -1}, 1},
        std::pair{std::vector<double>{0, 3, nan, 2, 3, nan}, 5}}) {
    std::vector<Array> in = {Array(x->type), Array(dy->type)};
    for (int i = 0; i < 6; ++i)
      in[0].set(i, vals[i]);
    in[1].set(0, 1.5);
    std::vector<Array> out = cpu->run(in);
    for (int i = 0; i < 6; ++i)
      EXPECT_EQ(out[1].get(i), i == want ? 1.5 : 0.0) << "tap " << i;
    auto ref = make_interpreter_backend()->compile(g)->run(in);
    expect_close(out[1], ref[1], "grad vs interpreter");
  }
}

TEST(CpuWindowOps, HostLoopsWriteOnlyTheirOutput) {
  // The host loops called directly with canaries around each output: a
  // write outside it (an index range past a row's end) shows up here even
  // where a later write would cover it in a graph's buffer.
  std::mt19937 rng(5);
  ThreadPool pool(2);
  const double canary = 12345.5;
  for (int t = 0; t < 60; ++t) {
    bool is_pool = t % 2 == 1;
    WindowCase k = random_window_case(rng, is_pool, DType::f64);
    SCOPED_TRACE(k.str());
    Window2d g = k.geometry();
    const size_t img = static_cast<size_t>(g.n * g.c * g.h * g.w),
                 cols =
                     static_cast<size_t>(g.n * g.groups * g.rows() * g.cols()),
                 pooled = static_cast<size_t>(g.n * g.c * g.ho * g.wo);
    const size_t pad = 64;
    std::vector<double> x(img, 0.5), dy(pooled, 1.0);
    auto guarded = [&](size_t n) {
      return std::vector<double>(n + 2 * pad, canary);
    };
    auto check = [&](const std::vector<double> &v, size_t n, const char *op) {
      for (size_t i = 0; i < pad; ++i) {
        EXPECT_EQ(v[i], canary) << op << " wrote before its output";
        EXPECT_EQ(v[pad + n + i], canary) << op << " wrote past its output";
      }
    };
    if (is_pool) {
      auto y = guarded(pooled), dx = guarded(img);
      host_max_pool2d(DType::f64, g, x.data(), y.data() + pad, pool);
      host_max_pool2d_grad(DType::f64, g, x.data(), dy.data(), dx.data() + pad,
                           pool);
      check(y, pooled, "max_pool2d");
      check(dx, img, "max_pool2d_grad");
    } else {
      auto c = guarded(cols), back = guarded(img);
      host_im2col(DType::f64, g, x.data(), c.data() + pad, pool);
      host_col2im(DType::f64, g, c.data() + pad, back.data() + pad, pool);
      check(c, cols, "im2col");
      check(back, img, "col2im");
    }
  }
}

// conv2d -> relu -> max_pool2d -> weighted sum, with x and w as params, so
// autodiff adds dx (col2im) and dw (a GEMM with im2col's columns).
std::unique_ptr<Graph> conv_pool_graph(DType dt, int64_t groups,
                                       std::vector<int64_t> stride,
                                       std::vector<int64_t> dilation) {
  auto g = std::make_unique<Graph>("conv_pool");
  Value *x = g->add_input("x", {dt, {2, 4, 10, 9}}, InputKind::param);
  Value *w = g->add_input("w", {dt, {6, 4 / groups, 3, 3}}, InputKind::param);
  Builder b(*g);
  Attrs ca;
  ca.set("stride", stride);
  ca.set("padding", std::vector<int64_t>{1, 1});
  ca.set("dilation", dilation);
  ca.set("groups", groups);
  Value *y = b.relu(b.op(Op::Conv2d, {x, w}, ca));
  Attrs pa;
  pa.set("kernel", std::vector<int64_t>{2, 2});
  Value *p = b.op(Op::MaxPool2d, {y}, pa);
  Value *r = g->add_input("r", p->type);
  g->add_output(b.sum(b.mul(p, r)));
  return g;
}

TEST(CpuWindowOps, DecomposedConv2dForwardBackwardMatchesTheInterpreter) {
  struct Case {
    DType dt;
    int64_t groups;
    std::vector<int64_t> stride, dilation;
  };
  for (const Case &c : {Case{DType::f32, 1, {1, 1}, {1, 1}},
                        Case{DType::f32, 2, {2, 1}, {1, 2}},
                        Case{DType::f64, 2, {1, 2}, {2, 1}}}) {
    SCOPED_TRACE(fmt::format("{} groups {}", dtype_name(c.dt), c.groups));
    auto g = conv_pool_graph(c.dt, c.groups, c.stride, c.dilation);
    PassOptions opts;
    opts.read_env = false;
    opts.verify_each = true;
    PassManager ad(opts);
    ad.add("autodiff");
    ad.run(*g);
    ASSERT_EQ(g->outputs.size(), 3u); // loss, dx, dw
    auto opt = g->clone();
    PassManager pm(opts);
    pm.add_pipeline(default_pipeline());
    pm.run(*opt);
    int conv = 0, im2col = 0, col2im = 0, pool_grad = 0;
    for (auto &n : opt->nodes()) {
      conv += n->op == Op::Conv2d;
      im2col += n->op == Op::Im2col;
      col2im += n->op == Op::Col2im;
      pool_grad += n->op == Op::MaxPool2dGrad;
    }
    EXPECT_EQ(conv, 0);
    EXPECT_GE(im2col, 1);
    EXPECT_EQ(col2im, 1);
    EXPECT_EQ(pool_grad, 1);
    std::vector<Array> in = window_inputs(*g, 5, false, false);
    auto got = make_cpu_backend()->compile(*opt)->run(in);
    auto want = make_interpreter_backend()->compile(*g)->run(in);
    ASSERT_EQ(got.size(), want.size());
    double tol = c.dt == DType::f32 ? 1e-4 : -1;
    for (size_t i = 0; i < got.size(); ++i)
      expect_close(got[i], want[i], "output " + std::to_string(i), tol, tol);
  }
}

} // namespace
} // namespace kiln::test
