// gather and scatter_add: shape inference, gradients and the reference
// interpreter. Both ops view their data as [outer, len, inner] along the
// axis (ir/gather.h); the interpreter checks every index before it writes
// anything, so a bad index is a kiln::Error naming it, never garbage.
#include "ir/builder.h"
#include "ir/error.h"
#include "ir/gather.h"
#include "ir/graph.h"
#include "ir/host_tensor.h"
#include "ir/op_impl.h"

#include <fmt/ranges.h>

#include <algorithm>

namespace kiln {
namespace {

void want_indices(std::string_view op, const Type &t) {
  if (!is_int(t.dtype))
    fail("{}: indices must be i32 or i64, got {}", op, t.str());
}

// The axis of a gather over a rank-`rank` operand (negative counts from
// the end, as numpy).
int gather_axis(std::string_view op, int64_t axis, int rank) {
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    fail("{}: axis {} is out of range for an operand of rank {}", op, axis,
         rank);
  return static_cast<int>(a);
}

int64_t prod(const Shape &s, size_t b, size_t e) {
  int64_t p = 1;
  for (size_t i = b; i < e; ++i)
    p *= s[i];
  return p;
}

// Throws the out-of-range error for the first bad index of `idx`.
void check_indices(std::string_view op, const HostTensor &idx, int64_t len,
                   int axis) {
  for (int64_t j = 0; j < idx.numel(); ++j) {
    int64_t v = idx.int_at(j);
    if (v < 0 || v >= len)
      throw Error(gather_index_error(op, v, idx.type.shape, j, len, axis));
  }
}

// The result type, refused when it would hold more than 2^56 elements (the
// parser's limit), which a product of valid shapes can reach.
Type result_type(std::string_view op, DType d, const Shape &s) {
  int64_t n = 1;
  for (int64_t v : s)
    if (__builtin_mul_overflow(n, std::max<int64_t>(v, 1), &n) ||
        n > (int64_t{1} << 56))
      fail("{}: the result {} has more than 2^56 elements", op, shape_str(s));
  return Type{d, s};
}

} // namespace

GatherGeometry gather_geometry(const Node &n) {
  GatherGeometry g;
  bool is_gather = n.op == Op::Gather;
  const Type &idx = n.operands[is_gather ? 1 : 0]->type;
  // The [outer, len, inner] side: gather's operand, scatter_add's result.
  const Shape &data =
      is_gather ? n.operands[0]->type.shape : n.result()->type.shape;
  g.axis = gather_axis(op_name(n.op), attr_int(n, "axis"),
                       static_cast<int>(data.size()));
  g.outer = prod(data, 0, g.axis);
  g.len = data[g.axis];
  g.inner = prod(data, g.axis + 1, data.size());
  g.count = idx.numel();
  g.index_dtype = idx.dtype;
  return g;
}

std::string gather_index_error(std::string_view op, int64_t value,
                               const Shape &indices, int64_t position,
                               int64_t len, int axis) {
  Shape at(indices.size());
  for (size_t d = indices.size(); d-- > 0;) {
    at[d] = indices[d] ? position % indices[d] : 0;
    position = indices[d] ? position / indices[d] : 0;
  }
  return fmt::format("{}: index {} at indices[{}] is out of range [0, {}) "
                     "for axis {}",
                     op, value, fmt::join(at, ","), len, axis);
}

std::vector<Type> infer_gather(std::string_view op, std::span<const Type> in,
                               const Attrs &attrs, std::span<const Type>) {
  const Type &x = in[0], &idx = in[1];
  want_indices(op, idx);
  if (x.rank() == 0)
    fail("{}: cannot gather from a scalar {}", op, x.str());
  int axis = gather_axis(op, attr_int(Op::Gather, attrs, "axis"), x.rank());
  Shape s(x.shape.begin(), x.shape.begin() + axis);
  s.insert(s.end(), idx.shape.begin(), idx.shape.end());
  s.insert(s.end(), x.shape.begin() + axis + 1, x.shape.end());
  return {result_type(op, x.dtype, s)};
}

std::vector<Type> infer_scatter_add(std::string_view op,
                                    std::span<const Type> in,
                                    const Attrs &attrs, std::span<const Type>) {
  const Type &idx = in[0], &up = in[1];
  want_indices(op, idx);
  if (!is_float(up.dtype))
    fail("{}: updates must be floating point, got {}", op, up.str());
  int64_t size = attr_int(Op::ScatterAdd, attrs, "size");
  if (size < 1)
    fail("{}: size must be at least 1, got {}", op, size);
  // The result has rank updates.rank - indices.rank + 1: the indices' axes
  // of the updates collapse into the one scattered axis.
  int rank = up.rank() - idx.rank() + 1;
  if (rank < 1)
    fail("{}: updates {} have fewer axes than indices {}", op, up.str(),
         idx.str());
  int axis = gather_axis(op, attr_int(Op::ScatterAdd, attrs, "axis"), rank);
  Shape mid(up.shape.begin() + axis, up.shape.begin() + axis + idx.rank());
  if (mid != idx.shape)
    fail("{}: updates {} must have the indices' shape {} at axes [{}, {}), "
         "got {}",
         op, up.str(), shape_str(idx.shape), axis, axis + idx.rank(),
         shape_str(mid));
  Shape s(up.shape.begin(), up.shape.begin() + axis);
  s.push_back(size);
  s.insert(s.end(), up.shape.begin() + axis + idx.rank(), up.shape.end());
  return {result_type(op, up.dtype, s)};
}

std::vector<Value *> vjp_gather(Builder &b, const Node &n,
                                std::span<Value *const> grads) {
  // Every element of x goes to each output slot whose index names it, so
  // its gradient is the sum of those slots' gradients: a scatter_add.
  const Value *x = n.operands[0];
  if (!is_float(x->type.dtype))
    return {nullptr, nullptr};
  GatherGeometry g = gather_geometry(n);
  Value *dx = b.op(Op::ScatterAdd, {n.operands[1], grads[0]},
                   Attrs{{"axis", int64_t{g.axis}}, {"size", g.len}});
  return {dx, nullptr};
}

std::vector<Value *> vjp_scatter_add(Builder &b, const Node &n,
                                     std::span<Value *const> grads) {
  GatherGeometry g = gather_geometry(n);
  Value *du = b.op(Op::Gather, {grads[0], n.operands[0]},
                   Attrs{{"axis", int64_t{g.axis}}});
  return {nullptr, du};
}

void eval_gather(const Node &n, std::span<const HostTensor *const> in,
                 std::vector<HostTensor> &out) {
  const HostTensor &x = *in[0], &idx = *in[1];
  GatherGeometry g = gather_geometry(n);
  check_indices("gather", idx, g.len, g.axis);
  HostTensor r(n.result()->type);
  bool exact = !x.i64.empty();
  if (exact)
    r.i64.resize(r.data.size());
  int64_t o = 0;
  for (int64_t a = 0; a < g.outer; ++a)
    for (int64_t j = 0; j < g.count; ++j) {
      int64_t from = (a * g.len + idx.int_at(j)) * g.inner;
      for (int64_t i = 0; i < g.inner; ++i, ++o) {
        r.data[o] = x.data[from + i];
        if (exact)
          r.i64[o] = x.i64[from + i];
      }
    }
  out.push_back(std::move(r));
}

void eval_scatter_add(const Node &n, std::span<const HostTensor *const> in,
                      std::vector<HostTensor> &out) {
  const HostTensor &idx = *in[0], &up = *in[1];
  GatherGeometry g = gather_geometry(n);
  check_indices("scatter_add", idx, g.len, g.axis);
  HostTensor r(n.result()->type);
  int64_t u = 0;
  for (int64_t a = 0; a < g.outer; ++a)
    for (int64_t j = 0; j < g.count; ++j) {
      int64_t to = (a * g.len + idx.int_at(j)) * g.inner;
      for (int64_t i = 0; i < g.inner; ++i)
        r.data[to + i] += up.data[u++];
    }
  out.push_back(std::move(r));
}

} // namespace kiln
