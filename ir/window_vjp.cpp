// Vector-Jacobian products of the 2-D window ops. A convolution's gradients
// are written with im2col, col2im and batched matmuls, the same pieces the
// decompose-windows pass makes of the forward convolution, so that after
// that pass and CSE the forward and backward share one im2col of the input.
#include "ir/builder.h"
#include "ir/op_impl.h"
#include "ir/window.h"

namespace kiln {
namespace {

// The window attributes of `n` that im2col/col2im take (kernel, stride,
// padding, dilation), with the kernel made explicit for conv2d and the
// stride for a pool whose stride defaults to its kernel.
Attrs window_attrs(const Node &n, const Window2d &g) {
  Attrs a;
  a.set("kernel", std::vector<int64_t>{g.kh, g.kw});
  a.set("stride", std::vector<int64_t>{g.sh, g.sw});
  a.set("padding", std::vector<int64_t>{g.ph, g.pw});
  if (g.dh != 1 || g.dw != 1)
    a.set("dilation", std::vector<int64_t>{g.dh, g.dw});
  (void)n;
  return a;
}

} // namespace

Value *conv2d_columns(Builder &b, const Node &n, Value *x) {
  Window2d g = window_of(n);
  Attrs a = window_attrs(n, g);
  if (g.groups != 1)
    a.set("groups", g.groups);
  return b.op(Op::Im2col, {x}, std::move(a));
}

std::vector<Value *> vjp_conv2d(Builder &b, const Node &n,
                                std::span<Value *const> gr) {
  // y[n, g, o, l] = sum_k w[g, o, k] cols[n, g, k, l], so
  // dcols = w^T dy (then col2im) and dw = sum_n dy cols^T.
  Value *x = n.operands[0], *w = n.operands[1];
  Window2d g = window_of(n);
  const int64_t o = w->type.shape[0], og = o / g.groups;
  Value *dy = b.reshape(gr[0], {g.n, g.groups, og, g.cols()});
  Value *w3 = b.reshape(w, {g.groups, og, g.rows()});
  Attrs ca = window_attrs(n, g);
  ca.set("size", std::vector<int64_t>{g.h, g.w});
  Value *dx = b.op(Op::Col2im, {b.matmul(b.transpose(w3), dy)}, std::move(ca));
  Value *cols = conv2d_columns(b, n, x);
  Value *dw = b.sum_to(b.matmul(dy, b.transpose(cols)), w3->type.shape);
  return {dx, b.reshape(dw, w->type.shape)};
}

std::vector<Value *> vjp_im2col(Builder &b, const Node &n,
                                std::span<Value *const> gr) {
  Window2d g = window_of(n);
  Attrs a = window_attrs(n, g);
  a.set("size", std::vector<int64_t>{g.h, g.w});
  return {b.op(Op::Col2im, {gr[0]}, std::move(a))};
}

std::vector<Value *> vjp_col2im(Builder &b, const Node &n,
                                std::span<Value *const> gr) {
  Window2d g = window_of(n);
  Attrs a = window_attrs(n, g);
  if (g.groups != 1)
    a.set("groups", g.groups);
  return {b.op(Op::Im2col, {gr[0]}, std::move(a))};
}

std::vector<Value *> vjp_max_pool2d(Builder &b, const Node &n,
                                    std::span<Value *const> gr) {
  return {b.op(Op::MaxPool2dGrad, {n.operands[0], gr[0]}, n.attrs)};
}

std::vector<Value *> vjp_avg_pool2d(Builder &b, const Node &n,
                                    std::span<Value *const> gr) {
  // Every tap of a window gets dy / (kh*kw): broadcast over the taps as
  // per-channel columns [N, C, kh*kw, L], then summed back by col2im.
  Window2d g = window_of(n);
  Value *dy = b.reshape(b.mul(gr[0], 1.0 / static_cast<double>(g.taps())),
                        {g.n, g.c, 1, g.cols()});
  dy = b.broadcast_to(dy, {g.n, g.c, g.taps(), g.cols()});
  Attrs a = window_attrs(n, g);
  a.set("size", std::vector<int64_t>{g.h, g.w});
  return {b.op(Op::Col2im, {dy}, std::move(a))};
}

} // namespace kiln
