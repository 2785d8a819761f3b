// Random geometries for the 2-D window op tests (im2col, col2im,
// max_pool2d, max_pool2d_grad) on the CPU backend
// (test_cpu_window_ops.cpp) and the CUDA backend (test_cuda_window_ops.cpp):
// graphs of those ops and inputs with max-pool ties and NaNs.
#pragma once

#include "ir/builder.h"
#include "ir/graph.h"
#include "ir/window.h"
#include "runtime/array.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <string>

namespace kiln::test {

struct WindowCase {
  DType dtype = DType::f32;
  int64_t n = 1, c = 1, h = 1, w = 1;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  int64_t groups = 1;
  bool pool = false;

  std::string str() const {
    return fmt::format("{} x[{},{},{},{}] kernel {}x{} stride {}x{} padding "
                       "{}x{} dilation {}x{} groups {}",
                       dtype_name(dtype), n, c, h, w, kh, kw, sh, sw, ph, pw,
                       dh, dw, groups);
  }
  // stride, padding, dilation (+ kernel; + groups for im2col).
  Attrs attrs(bool with_groups) const {
    using V = std::vector<int64_t>;
    Attrs a;
    a.set("kernel", V{kh, kw});
    a.set("stride", V{sh, sw});
    a.set("padding", V{ph, pw});
    a.set("dilation", V{dh, dw});
    if (with_groups)
      a.set("groups", groups);
    return a;
  }
  Window2d geometry() const {
    return window2d(pool ? "max_pool2d" : "im2col", {n, c, h, w}, kh, kw,
                    attrs(!pool), pool);
  }
};

// Strides 1-3, paddings 0-2 (a pool's at most half its kernel), dilations
// 1-2, groups 1-3 (im2col), batch 1-3, kernels 1-3 per side, an input at
// least the dilated kernel less the padding, non-square.
inline WindowCase random_window_case(std::mt19937 &rng, bool pool,
                                     DType dtype) {
  auto in = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  WindowCase k;
  k.dtype = dtype;
  k.pool = pool;
  k.n = in(1, 3);
  k.groups = pool ? 1 : in(1, 3);
  k.c = k.groups * in(1, 2);
  k.kh = in(1, 3);
  k.kw = in(pool ? 2 : 1, 3);
  k.sh = in(1, 3);
  k.sw = in(1, 3);
  k.ph = pool ? in(0, k.kh / 2) : in(0, 2);
  k.pw = pool ? in(0, k.kw / 2) : in(0, 2);
  k.dh = in(1, 2);
  k.dw = in(1, 2);
  int64_t min_h = std::max<int64_t>(1, (k.kh - 1) * k.dh + 1 - 2 * k.ph);
  int64_t min_w = std::max<int64_t>(1, (k.kw - 1) * k.dw + 1 - 2 * k.pw);
  k.h = min_h + in(0, 6);
  k.w = min_w + in(1, 7);
  return k;
}

// im2col(x) and col2im(cols) of one case: inputs x and cols, outputs the
// columns of x and the image of cols.
inline std::unique_ptr<Graph> im2col_col2im_graph(const WindowCase &k) {
  Window2d g = k.geometry();
  auto gr = std::make_unique<Graph>("im2col_col2im");
  Value *x = gr->add_input("x", {k.dtype, {k.n, k.c, k.h, k.w}});
  Value *cols =
      gr->add_input("cols", {k.dtype, {k.n, k.groups, g.rows(), g.cols()}});
  Builder b(*gr);
  gr->add_output(b.op(Op::Im2col, {x}, k.attrs(true)));
  Attrs a = k.attrs(false);
  a.set("size", std::vector<int64_t>{k.h, k.w});
  gr->add_output(b.op(Op::Col2im, {cols}, std::move(a)));
  return gr;
}

// max_pool2d(x) and max_pool2d_grad(x, dy) of one (pool) case.
inline std::unique_ptr<Graph> max_pool_graph(const WindowCase &k) {
  Window2d g = k.geometry();
  auto gr = std::make_unique<Graph>("max_pool");
  Value *x = gr->add_input("x", {k.dtype, {k.n, k.c, k.h, k.w}});
  Value *dy = gr->add_input("dy", {k.dtype, {k.n, k.c, g.ho, g.wo}});
  Builder b(*gr);
  gr->add_output(b.op(Op::MaxPool2d, {x}, k.attrs(false)));
  gr->add_output(b.op(Op::MaxPool2dGrad, {x, dy}, k.attrs(false)));
  return gr;
}

// Every case in one graph (one translation unit on the CUDA backend): per
// case, im2col and col2im, or (a pool case) max_pool2d and its gradient,
// with that case's inputs named by its index.
inline std::unique_ptr<Graph>
window_cases_graph(const std::vector<WindowCase> &cases,
                   const std::string &name) {
  auto gr = std::make_unique<Graph>(name);
  Builder b(*gr);
  for (size_t i = 0; i < cases.size(); ++i) {
    const WindowCase &k = cases[i];
    Window2d g = k.geometry();
    Value *x =
        gr->add_input(fmt::format("x{}", i), {k.dtype, {k.n, k.c, k.h, k.w}});
    if (k.pool) {
      Value *dy = gr->add_input(fmt::format("dy{}", i),
                                {k.dtype, {k.n, k.c, g.ho, g.wo}});
      gr->add_output(b.op(Op::MaxPool2d, {x}, k.attrs(false)));
      gr->add_output(b.op(Op::MaxPool2dGrad, {x, dy}, k.attrs(false)));
    } else {
      Value *cols =
          gr->add_input(fmt::format("cols{}", i),
                        {k.dtype, {k.n, k.groups, g.rows(), g.cols()}});
      gr->add_output(b.op(Op::Im2col, {x}, k.attrs(true)));
      Attrs a = k.attrs(false);
      a.set("size", std::vector<int64_t>{k.h, k.w});
      gr->add_output(b.op(Op::Col2im, {cols}, std::move(a)));
    }
  }
  return gr;
}

// Uniform values in [-2, 2) for every input; with `ties`, the images'
// (inputs named x...) values are multiples of 0.5 in [-1, 1] (so most pooling
// windows hold equal maxima) and, with `nans`, about one in six of them is NaN
// (windows with one NaN and with several).
inline std::vector<Array> window_inputs(const Graph &g, uint32_t seed,
                                        bool ties, bool nans) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-2, 2);
  std::vector<Array> in;
  for (size_t i = 0; i < g.inputs().size(); ++i) {
    Array a(g.inputs()[i].value->type);
    for (int64_t e = 0; e < a.numel(); ++e) {
      double v = u(rng);
      const bool image = g.inputs()[i].value->name[0] == 'x';
      if (image && ties)
        v = std::round(v) / 2;
      if (image && nans && rng() % 6 == 0)
        v = std::numeric_limits<double>::quiet_NaN();
      a.set(e, v);
    }
    in.push_back(std::move(a));
  }
  return in;
}

// Expects equal types and |got - want| <= atol + rtol |want| elementwise,
// NaN matching NaN and an infinity the same infinity (a pooling window of
// padding only is -inf).
inline void expect_window_close(const Array &got, const Array &want,
                                const std::string &what, double rtol,
                                double atol) {
  ASSERT_EQ(got.type(), want.type()) << what;
  int bad = 0;
  for (int64_t i = 0; i < want.numel() && bad < 5; ++i) {
    double g = got.get(i), w = want.get(i);
    if ((std::isnan(w) && std::isnan(g)) || (std::isinf(w) && g == w))
      continue;
    if (!(std::fabs(g - w) <= atol + rtol * std::fabs(w))) {
      ADD_FAILURE() << what << ": element " << i << " of " << want.type().str()
                    << ": got " << g << ", want " << w;
      ++bad;
    }
  }
}

} // namespace kiln::test
