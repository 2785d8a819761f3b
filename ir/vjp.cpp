// Vector-Jacobian products of the op table's differentiable ops, written
// with IR ops so that backward graphs are ordinary graphs. Each returns one
// gradient per operand, already reduced to the operand's shape where the op
// broadcast it; nullptr marks "no gradient".
#include "ir/builder.h"
#include "ir/infer.h"
#include "ir/op_impl.h"

namespace kiln {

namespace {

Value *in(const Node &n, int i) { return n.operands[i]; }
Value *out(const Node &n) { return n.result(); }
Value *zero_like(Builder &b, Value *x) { return b.scalar(0, x->type.dtype); }
// g reduced to the shape of operand i (undoing broadcasting).
Value *to_operand(Builder &b, const Node &n, int i, Value *g) {
  return b.sum_to(g, in(n, i)->type.shape);
}

} // namespace

std::vector<Value *> vjp_cast(Builder &b, const Node &n,
                              std::span<Value *const> g) {
  if (!is_float(in(n, 0)->type.dtype))
    return {nullptr};
  return {b.cast(g[0], in(n, 0)->type.dtype)};
}

std::vector<Value *> vjp_neg(Builder &b, const Node &,
                             std::span<Value *const> g) {
  return {b.neg(g[0])};
}

std::vector<Value *> vjp_abs(Builder &b, const Node &n,
                             std::span<Value *const> g) {
  // d|x| = sign(x); 0 at 0, as torch.
  Value *x = in(n, 0), *z = zero_like(b, x);
  Value *pos = b.where(b.gt(x, z), g[0], z);
  return {b.where(b.lt(x, z), b.neg(g[0]), pos)};
}

std::vector<Value *> vjp_exp(Builder &b, const Node &n,
                             std::span<Value *const> g) {
  return {b.mul(g[0], out(n))};
}

std::vector<Value *> vjp_log(Builder &b, const Node &n,
                             std::span<Value *const> g) {
  return {b.div(g[0], in(n, 0))};
}

std::vector<Value *> vjp_sqrt(Builder &b, const Node &n,
                              std::span<Value *const> g) {
  return {b.div(b.mul(g[0], 0.5), out(n))};
}

std::vector<Value *> vjp_rsqrt(Builder &b, const Node &n,
                               std::span<Value *const> g) {
  // d x^-1/2 = -1/2 x^-3/2 = -1/2 y^3.
  Value *y = out(n);
  return {b.mul(b.mul(g[0], -0.5), b.mul(y, b.mul(y, y)))};
}

std::vector<Value *> vjp_tanh(Builder &b, const Node &n,
                              std::span<Value *const> g) {
  Value *y = out(n);
  Value *one = b.scalar(1, y->type.dtype);
  return {b.mul(g[0], b.sub(one, b.mul(y, y)))};
}

std::vector<Value *> vjp_sigmoid(Builder &b, const Node &n,
                                 std::span<Value *const> g) {
  Value *y = out(n);
  Value *one = b.scalar(1, y->type.dtype);
  return {b.mul(g[0], b.mul(y, b.sub(one, y)))};
}

std::vector<Value *> vjp_relu(Builder &b, const Node &n,
                              std::span<Value *const> g) {
  // torch's threshold_backward: 0 where x <= 0, else the gradient, so a
  // NaN input passes its gradient through (torch 1.13: relu'(nan) = 1).
  Value *x = in(n, 0), *z = zero_like(b, x);
  return {b.where(b.le(x, z), z, g[0])};
}

std::vector<Value *> vjp_erf(Builder &b, const Node &n,
                             std::span<Value *const> g) {
  // d erf(x) = 2/sqrt(pi) exp(-x^2).
  Value *x = in(n, 0);
  return {b.mul(b.mul(g[0], 1.1283791670955126), b.exp(b.neg(b.mul(x, x))))};
}

std::vector<Value *> vjp_gelu(Builder &b, const Node &n,
                              std::span<Value *const> g) {
  Value *x = in(n, 0);
  const AttrValue *a = n.attrs.find("approximate");
  const std::string *form = a ? std::get_if<std::string>(a) : nullptr;
  Value *d;
  if (form && *form == "tanh") {
    // y = x/2 (1 + t), t = tanh(u), u = k (x + c x^3):
    // dy = (1 + t)/2 + x/2 (1 - t^2) k (1 + 3 c x^2).
    const double k = 0.7978845608028654, c = 0.044715;
    Value *x2 = b.mul(x, x);
    Value *t = b.tanh(b.mul(b.add(x, b.mul(b.mul(x2, x), c)), k));
    Value *one = b.scalar(1, x->type.dtype);
    Value *du = b.mul(b.add(b.mul(x2, 3 * c), 1.0), k);
    Value *dt = b.mul(b.mul(b.sub(one, b.mul(t, t)), du), b.mul(x, 0.5));
    d = b.add(b.mul(b.add(t, 1.0), 0.5), dt);
  } else {
    // y = x Phi(x): dy = Phi(x) + x phi(x), phi(x) = exp(-x^2/2)/sqrt(2 pi).
    Value *cdf =
        b.mul(b.add(b.op(Op::Erf, {b.mul(x, 0.7071067811865476)}), 1.0), 0.5);
    Value *pdf = b.mul(b.exp(b.mul(b.mul(x, x), -0.5)), 0.3989422804014327);
    d = b.add(cdf, b.mul(x, pdf));
  }
  return {b.mul(g[0], d)};
}

std::vector<Value *> vjp_clamp(Builder &b, const Node &n,
                               std::span<Value *const> g) {
  // torch's clamp_backward: the gradient where min <= x <= max (bounds
  // included), 0 elsewhere and where x is NaN.
  Value *x = in(n, 0), *z = zero_like(b, g[0]), *r = g[0];
  if (n.attrs.has("min"))
    r = b.where(b.ge(x, b.scalar(n.attrs.get_float("min"), x->type.dtype)), r,
                z);
  if (n.attrs.has("max"))
    r = b.where(b.le(x, b.scalar(n.attrs.get_float("max"), x->type.dtype)), r,
                z);
  return {r};
}

std::vector<Value *> vjp_add(Builder &b, const Node &n,
                             std::span<Value *const> g) {
  return {to_operand(b, n, 0, g[0]), to_operand(b, n, 1, g[0])};
}

std::vector<Value *> vjp_sub(Builder &b, const Node &n,
                             std::span<Value *const> g) {
  return {to_operand(b, n, 0, g[0]), to_operand(b, n, 1, b.neg(g[0]))};
}

std::vector<Value *> vjp_mul(Builder &b, const Node &n,
                             std::span<Value *const> g) {
  return {to_operand(b, n, 0, b.mul(g[0], in(n, 1))),
          to_operand(b, n, 1, b.mul(g[0], in(n, 0)))};
}

std::vector<Value *> vjp_div(Builder &b, const Node &n,
                             std::span<Value *const> g) {
  // d(a/b)/da = 1/b; d(a/b)/db = -a/b^2 = -y/b.
  Value *ga = b.div(g[0], in(n, 1));
  Value *gb = b.neg(b.mul(ga, out(n)));
  return {to_operand(b, n, 0, ga), to_operand(b, n, 1, gb)};
}

std::vector<Value *> vjp_pow(Builder &b, const Node &n,
                             std::span<Value *const> g) {
  Value *a = in(n, 0), *e = in(n, 1), *y = out(n);
  Value *one = b.scalar(1, a->type.dtype);
  Value *ga = b.mul(g[0], b.mul(e, b.pow(a, b.sub(e, one))));
  // d a^e / de = y log a; defined as 0 where a <= 0 and y == 0 (torch).
  Value *gb = b.mul(g[0], b.mul(y, b.log(a)));
  gb = b.where(b.eq(y, zero_like(b, y)), zero_like(b, y), gb);
  return {to_operand(b, n, 0, ga), to_operand(b, n, 1, gb)};
}

// torch's maximum/minimum backward: an exact tie splits the gradient half
// and half; where the operands are unordered (a NaN) both get all of it.
// An operand that lost (a_loses / c_loses) gets 0.
namespace {
std::vector<Value *> tie_split_grad(Builder &b, const Node &n, Value *g,
                                    Value *a_loses, Value *c_loses) {
  Value *a = in(n, 0), *c = in(n, 1), *z = zero_like(b, g);
  Value *tie = b.eq(a, c);
  Value *half = b.mul(g, 0.5);
  return {to_operand(b, n, 0, b.where(tie, half, b.where(a_loses, z, g))),
          to_operand(b, n, 1, b.where(tie, half, b.where(c_loses, z, g)))};
}
} // namespace

std::vector<Value *> vjp_max(Builder &b, const Node &n,
                             std::span<Value *const> g) {
  Value *a = in(n, 0), *c = in(n, 1);
  return tie_split_grad(b, n, g[0], b.lt(a, c), b.gt(a, c));
}

std::vector<Value *> vjp_min(Builder &b, const Node &n,
                             std::span<Value *const> g) {
  Value *a = in(n, 0), *c = in(n, 1);
  return tie_split_grad(b, n, g[0], b.gt(a, c), b.lt(a, c));
}

std::vector<Value *> vjp_where(Builder &b, const Node &n,
                               std::span<Value *const> g) {
  Value *c = in(n, 0), *z = zero_like(b, g[0]);
  return {nullptr, to_operand(b, n, 1, b.where(c, g[0], z)),
          to_operand(b, n, 2, b.where(c, z, g[0]))};
}

namespace {

// The gradient of a reduction's result, reshaped to keep the reduced axes
// and broadcast back over the operand's shape.
Value *unreduce(Builder &b, const Node &n, Value *g) {
  const Type &xt = in(n, 0)->type;
  Shape kept = xt.shape;
  for (int a : reduction_axes(n.attrs, xt.rank()))
    kept[a] = 1;
  return b.broadcast_to(b.reshape(g, kept), xt.shape);
}

} // namespace

std::vector<Value *> vjp_sum(Builder &b, const Node &n,
                             std::span<Value *const> g) {
  return {unreduce(b, n, g[0])};
}

std::vector<Value *> vjp_mean(Builder &b, const Node &n,
                              std::span<Value *const> g) {
  double count = static_cast<double>(in(n, 0)->type.numel()) /
                 static_cast<double>(out(n)->type.numel());
  return {unreduce(b, n, b.mul(g[0], 1.0 / count))};
}

std::vector<Value *> vjp_amax(Builder &b, const Node &n,
                              std::span<Value *const> g) {
  // The gradient is divided evenly among the elements equal to the maximum
  // (as PyTorch's amax): k tied elements get g / k each, so that moving all
  // of them by t moves the maximum, and the loss, by g t.
  Value *x = in(n, 0);
  Value *m = unreduce(b, n, out(n));
  Value *hit = b.cast(b.eq(x, m), x->type.dtype);
  Attrs count_attrs = n.attrs;
  count_attrs.set("keepdims", true);
  Value *count = b.op(Op::Sum, {hit}, std::move(count_attrs));
  return {b.div(b.mul(unreduce(b, n, g[0]), hit), count)};
}

std::vector<Value *> vjp_log_softmax(Builder &b, const Node &n,
                                     std::span<Value *const> g) {
  // dx = g - softmax(x) * sum(g, axis).
  int64_t axis = attr_int(n, "axis");
  Value *s = b.sum(g[0], {axis}, /*keepdims=*/true);
  return {b.sub(g[0], b.mul(b.exp(out(n)), s))};
}

std::vector<Value *> vjp_softmax(Builder &b, const Node &n,
                                 std::span<Value *const> g) {
  // dx = y * (g - sum(g * y, axis)).
  int64_t axis = attr_int(n, "axis");
  Value *y = out(n);
  Value *s = b.sum(b.mul(g[0], y), {axis}, /*keepdims=*/true);
  return {b.mul(y, b.sub(g[0], s))};
}

std::vector<Value *> vjp_matmul(Builder &b, const Node &n,
                                std::span<Value *const> g) {
  // C = A B: dA = dC B^T, dB = A^T dC, summed over broadcast batch axes.
  Value *a = in(n, 0), *c = in(n, 1);
  Value *ga = b.matmul(g[0], b.transpose(c));
  Value *gb = b.matmul(b.transpose(a), g[0]);
  return {b.sum_to(ga, a->type.shape), b.sum_to(gb, c->type.shape)};
}

std::vector<Value *> vjp_transpose(Builder &b, const Node &n,
                                   std::span<Value *const> g) {
  const auto &perm = n.attrs.get_ints("perm");
  std::vector<int64_t> inv(perm.size());
  for (size_t i = 0; i < perm.size(); ++i)
    inv[perm[i]] = static_cast<int64_t>(i);
  return {b.transpose(g[0], inv)};
}

std::vector<Value *> vjp_reshape(Builder &b, const Node &n,
                                 std::span<Value *const> g) {
  return {b.reshape(g[0], in(n, 0)->type.shape)};
}

std::vector<Value *> vjp_broadcast_to(Builder &b, const Node &n,
                                      std::span<Value *const> g) {
  return {b.sum_to(g[0], in(n, 0)->type.shape)};
}

std::vector<Value *> vjp_concat(Builder &b, const Node &n,
                                std::span<Value *const> g) {
  // Operand i's gradient is its stretch of the result's gradient.
  std::vector<Value *> r(n.operands.size(), nullptr);
  if (!is_float(out(n)->type.dtype))
    return r;
  const Shape &os = out(n)->type.shape;
  int axis = normalize_axis(attr_int(n, "axis"), static_cast<int>(os.size()));
  int64_t at = 0;
  for (size_t i = 0; i < n.operands.size(); ++i) {
    std::vector<int64_t> starts(os.size(), 0), stops = os;
    int64_t len = in(n, static_cast<int>(i))->type.shape[axis];
    starts[axis] = at;
    stops[axis] = at + len;
    at += len;
    r[i] = b.op(Op::Slice, {g[0]}, {{"starts", starts}, {"stops", stops}});
  }
  return r;
}

std::vector<Value *> vjp_slice(Builder &b, const Node &n,
                               std::span<Value *const> g) {
  // The gradient goes back where the elements came from, zeros elsewhere:
  // a pad, with step - 1 zeros between neighbours for a strided slice.
  if (!is_float(in(n, 0)->type.dtype))
    return {nullptr};
  const Shape &is = in(n, 0)->type.shape;
  SliceBounds sb = slice_bounds(is, n.attrs);
  std::vector<int64_t> pads, interior;
  bool strided = false;
  for (size_t d = 0; d < is.size(); ++d) {
    int64_t last = sb.start[d] + (sb.out[d] - 1) * sb.step[d];
    pads.push_back(sb.start[d]);
    pads.push_back(is[d] - last - 1);
    interior.push_back(sb.step[d] - 1);
    strided = strided || sb.step[d] > 1;
  }
  Attrs a{{"pads", pads}};
  if (strided)
    a.set("interior", interior);
  return {b.op(Op::Pad, {g[0]}, std::move(a))};
}

std::vector<Value *> vjp_pad(Builder &b, const Node &n,
                             std::span<Value *const> g) {
  // The operand's elements are a (strided) slice of the result.
  if (!is_float(in(n, 0)->type.dtype))
    return {nullptr};
  const Shape &is = in(n, 0)->type.shape;
  PadBounds pb = pad_bounds(is, n.attrs);
  std::vector<int64_t> starts, stops, steps;
  bool strided = false;
  for (size_t d = 0; d < is.size(); ++d) {
    int64_t step = pb.interior[d] + 1;
    starts.push_back(pb.before[d]);
    stops.push_back(pb.before[d] + (is[d] - 1) * step + 1);
    steps.push_back(step);
    strided = strided || step > 1;
  }
  Attrs a{{"starts", starts}, {"stops", stops}};
  if (strided)
    a.set("steps", steps);
  return {b.op(Op::Slice, {g[0]}, std::move(a))};
}

} // namespace kiln
