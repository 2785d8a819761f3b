// Shape inference and the reference interpreter for the 2-D window ops
// (conv2d, im2col, col2im, max_pool2d, max_pool2d_grad, avg_pool2d): plain
// loops in f64 over the geometry of ir/window.h, written for clarity; they
// are what the backends' decompositions and kernels are checked against.
#include "ir/error.h"
#include "ir/graph.h"
#include "ir/host_tensor.h"
#include "ir/op_impl.h"
#include "ir/window.h"

#include <cmath>
#include <limits>

namespace kiln {
namespace {

void want_float(std::string_view op, const Type &t, const char *what) {
  if (!is_float(t.dtype))
    fail("{}: {} must be floating point, got {}", op, what, t.str());
}

Window2d pool_geometry(std::string_view op, const Shape &in,
                       const Attrs &attrs) {
  auto [kh, kw] = window_kernel(op, attrs);
  return window2d(op, in, kh, kw, attrs, /*pool=*/true);
}

// The interpreter's index helpers: input [N, C, H, W] row-major.
struct Nchw {
  int64_t c, h, w;
  int64_t operator()(int64_t n, int64_t ci, int64_t y, int64_t x) const {
    return ((n * c + ci) * h + y) * w + x;
  }
};

// The arg-max of window (n, c, oy, ox) as torch picks it: the first
// maximum, or the last NaN; -1 when every tap is padding.
int64_t window_argmax(const Window2d &g, const std::vector<double> &x,
                      int64_t n, int64_t c, int64_t oy, int64_t ox) {
  Nchw at{g.c, g.h, g.w};
  int64_t best = -1;
  double bv = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < g.kh; ++i) {
    int64_t y = oy * g.sh - g.ph + i * g.dh;
    if (y < 0 || y >= g.h)
      continue;
    for (int64_t j = 0; j < g.kw; ++j) {
      int64_t xx = ox * g.sw - g.pw + j * g.dw;
      if (xx < 0 || xx >= g.w)
        continue;
      double v = x[at(n, c, y, xx)];
      if (best < 0 || v > bv || std::isnan(v)) {
        best = at(n, c, y, xx);
        bv = v;
      }
    }
  }
  return best;
}

// fn(i, n, c, oy, ox) for every output element i of a pool, in order.
template <typename Fn> void for_each_window(const Window2d &g, Fn fn) {
  int64_t idx = 0;
  for (int64_t b = 0; b < g.n; ++b)
    for (int64_t c = 0; c < g.c; ++c)
      for (int64_t oy = 0; oy < g.ho; ++oy)
        for (int64_t ox = 0; ox < g.wo; ++ox, ++idx)
          fn(idx, b, c, oy, ox);
}

} // namespace

std::vector<Type> infer_conv2d(std::string_view op, std::span<const Type> in,
                               const Attrs &attrs, std::span<const Type>) {
  const Type &x = in[0], &w = in[1];
  want_float(op, x, "input");
  if (w.dtype != x.dtype)
    fail("{}: input {} and weight {} differ in dtype", op, x.str(), w.str());
  if (w.rank() != 4)
    fail("{}: expected a 4-D weight [O, C/groups, kh, kw], got {}", op,
         w.str());
  Window2d g = window2d(op, x.shape, w.shape[2], w.shape[3], attrs);
  const int64_t o = w.shape[0];
  if (o % g.groups != 0)
    fail("{}: groups {} does not divide the {} output channels of weight {}",
         op, g.groups, o, w.str());
  if (w.shape[1] * g.groups != g.c)
    fail("{}: input {} has {} channels but weight {} expects {} ({} per "
         "group x {} groups)",
         op, x.str(), g.c, w.str(), w.shape[1] * g.groups, w.shape[1],
         g.groups);
  return {Type{x.dtype, {g.n, o, g.ho, g.wo}}};
}

std::vector<Type> infer_im2col(std::string_view op, std::span<const Type> in,
                               const Attrs &attrs, std::span<const Type>) {
  want_float(op, in[0], "input");
  auto [kh, kw] = window_kernel(op, attrs);
  Window2d g = window2d(op, in[0].shape, kh, kw, attrs);
  return {Type{in[0].dtype, {g.n, g.groups, g.rows(), g.cols()}}};
}

std::vector<Type> infer_col2im(std::string_view op, std::span<const Type> in,
                               const Attrs &attrs, std::span<const Type>) {
  want_float(op, in[0], "columns");
  Window2d g = col2im_window(op, in[0].shape, attrs);
  return {Type{in[0].dtype, {g.n, g.c, g.h, g.w}}};
}

std::vector<Type> infer_pool2d(std::string_view op, std::span<const Type> in,
                               const Attrs &attrs, std::span<const Type>) {
  want_float(op, in[0], "input");
  Window2d g = pool_geometry(op, in[0].shape, attrs);
  return {Type{in[0].dtype, {g.n, g.c, g.ho, g.wo}}};
}

std::vector<Type> infer_max_pool2d_grad(std::string_view op,
                                        std::span<const Type> in,
                                        const Attrs &attrs,
                                        std::span<const Type>) {
  want_float(op, in[0], "input");
  Window2d g = pool_geometry(op, in[0].shape, attrs);
  Type dy{in[0].dtype, {g.n, g.c, g.ho, g.wo}};
  if (in[1] != dy)
    fail("{}: gradient {} does not match the pooled output {}", op, in[1].str(),
         dy.str());
  return {in[0]};
}

void eval_conv2d(const Node &n, std::span<const HostTensor *const> in,
                 std::vector<HostTensor> &out) {
  const HostTensor &x = *in[0], &w = *in[1];
  Window2d g = window_of(n);
  const int64_t o = w.type.shape[0], og = o / g.groups;
  Nchw at{g.c, g.h, g.w};
  HostTensor r(n.result()->type);
  int64_t idx = 0;
  for (int64_t b = 0; b < g.n; ++b)
    for (int64_t oc = 0; oc < o; ++oc)
      for (int64_t oy = 0; oy < g.ho; ++oy)
        for (int64_t ox = 0; ox < g.wo; ++ox, ++idx) {
          double acc = 0;
          int64_t c0 = (oc / og) * g.cg();
          for (int64_t c = 0; c < g.cg(); ++c)
            for (int64_t i = 0; i < g.kh; ++i) {
              int64_t y = oy * g.sh - g.ph + i * g.dh;
              if (y < 0 || y >= g.h)
                continue;
              for (int64_t j = 0; j < g.kw; ++j) {
                int64_t xx = ox * g.sw - g.pw + j * g.dw;
                if (xx < 0 || xx >= g.w)
                  continue;
                acc += x.data[at(b, c0 + c, y, xx)] *
                       w.data[((oc * g.cg() + c) * g.kh + i) * g.kw + j];
              }
            }
          r.data[idx] = acc;
        }
  out.push_back(std::move(r));
}

// im2col and col2im walk the same (image, group, row, column) <-> input
// element map; `forward` copies input to columns, else adds back.
static void im2col_walk(const Window2d &g, std::vector<double> &img,
                        std::vector<double> &cols, bool forward) {
  Nchw at{g.c, g.h, g.w};
  int64_t idx = 0;
  for (int64_t b = 0; b < g.n; ++b)
    for (int64_t gr = 0; gr < g.groups; ++gr)
      for (int64_t c = 0; c < g.cg(); ++c)
        for (int64_t i = 0; i < g.kh; ++i)
          for (int64_t j = 0; j < g.kw; ++j)
            for (int64_t oy = 0; oy < g.ho; ++oy)
              for (int64_t ox = 0; ox < g.wo; ++ox, ++idx) {
                int64_t y = oy * g.sh - g.ph + i * g.dh;
                int64_t xx = ox * g.sw - g.pw + j * g.dw;
                if (y < 0 || y >= g.h || xx < 0 || xx >= g.w)
                  continue;
                int64_t e = at(b, gr * g.cg() + c, y, xx);
                if (forward)
                  cols[idx] = img[e];
                else
                  img[e] += cols[idx];
              }
}

void eval_im2col(const Node &n, std::span<const HostTensor *const> in,
                 std::vector<HostTensor> &out) {
  Window2d g = window_of(n);
  HostTensor r(n.result()->type);
  std::vector<double> img = in[0]->data;
  im2col_walk(g, img, r.data, true);
  out.push_back(std::move(r));
}

void eval_col2im(const Node &n, std::span<const HostTensor *const> in,
                 std::vector<HostTensor> &out) {
  Window2d g = window_of(n);
  HostTensor r(n.result()->type);
  std::vector<double> cols = in[0]->data;
  im2col_walk(g, r.data, cols, false);
  out.push_back(std::move(r));
}

void eval_max_pool2d(const Node &n, std::span<const HostTensor *const> in,
                     std::vector<HostTensor> &out) {
  Window2d g = window_of(n);
  HostTensor r(n.result()->type);
  const std::vector<double> &x = in[0]->data;
  for_each_window(
      g, [&](int64_t i, int64_t b, int64_t c, int64_t oy, int64_t ox) {
        int64_t a = window_argmax(g, x, b, c, oy, ox);
        r.data[i] = a < 0 ? -std::numeric_limits<double>::infinity() : x[a];
      });
  out.push_back(std::move(r));
}

void eval_max_pool2d_grad(const Node &n, std::span<const HostTensor *const> in,
                          std::vector<HostTensor> &out) {
  Window2d g = window_of(n);
  HostTensor r(n.result()->type);
  for_each_window(g,
                  [&](int64_t i, int64_t b, int64_t c, int64_t oy, int64_t ox) {
                    int64_t a = window_argmax(g, in[0]->data, b, c, oy, ox);
                    if (a >= 0)
                      r.data[a] += in[1]->data[i];
                  });
  out.push_back(std::move(r));
}

void eval_avg_pool2d(const Node &n, std::span<const HostTensor *const> in,
                     std::vector<HostTensor> &out) {
  Window2d g = window_of(n);
  Nchw at{g.c, g.h, g.w};
  HostTensor r(n.result()->type);
  for_each_window(
      g, [&](int64_t idx, int64_t b, int64_t c, int64_t oy, int64_t ox) {
        double acc = 0;
        for (int64_t i = 0; i < g.kh; ++i)
          for (int64_t j = 0; j < g.kw; ++j) {
            int64_t y = oy * g.sh - g.ph + i, xx = ox * g.sw - g.pw + j;
            if (y >= 0 && y < g.h && xx >= 0 && xx < g.w)
              acc += in[0]->data[at(b, c, y, xx)];
          }
        r.data[idx] = acc / static_cast<double>(g.taps());
      });
  out.push_back(std::move(r));
}

} // namespace kiln
