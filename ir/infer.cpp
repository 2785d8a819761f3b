// Shape and dtype inference for every op of the table. Messages name the op
// and show what was expected and what was given; the verifier and the
// Builder add where it happened.
#include "ir/infer.h"

#include "ir/error.h"
#include "ir/op_impl.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace kiln {

namespace {

std::vector<Type> one(Type t) { return {std::move(t)}; }

void require_float(const Type &t, std::string_view op) {
  if (!is_float(t.dtype))
    fail("{} expects a float operand, got {}", op, t.str());
}

Shape broadcast_or_fail(const Shape &a, const Shape &b, std::string_view op) {
  auto s = broadcast_shapes(a, b);
  if (!s)
    fail("{} cannot broadcast {} with {}", op, shape_str(a), shape_str(b));
  return *s;
}

void same_dtype(const Type &a, const Type &b, std::string_view op) {
  if (a.dtype != b.dtype)
    fail("{} operands must have one dtype, got {} and {}", op, a.str(),
         b.str());
}

DType dtype_attr(const Attrs &attrs, const char *name) {
  const std::string &s = attrs.get_str(name);
  auto d = parse_dtype(s);
  if (!d)
    fail("unknown dtype '{}' in attribute '{}'", s, name);
  return *d;
}

// The sorted, normalized axes of a reduction (all axes when absent).
std::vector<int> reduce_axes(const Attrs &attrs, int rank) {
  std::vector<int> axes;
  if (!attrs.has("axes")) {
    for (int i = 0; i < rank; ++i)
      axes.push_back(i);
    return axes;
  }
  for (int64_t a : attrs.get_ints("axes"))
    axes.push_back(normalize_axis(a, rank));
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end())
    fail("reduction axes must not repeat");
  return axes;
}

} // namespace

std::vector<int> reduction_axes(const Attrs &attrs, int rank) {
  return reduce_axes(attrs, rank);
}

std::vector<Type> infer_explicit(std::string_view op, std::span<const Type>,
                                 const Attrs &,
                                 std::span<const Type> declared) {
  if (declared.empty())
    fail("{} needs its result type", op);
  return {declared.begin(), declared.end()};
}

std::vector<Type> infer_random(std::string_view, std::span<const Type> in,
                               const Attrs &, std::span<const Type> declared) {
  for (const Type &t : in)
    if (t.dtype != DType::i64 || t.rank() != 0)
      fail("random_uniform expects i64[] seed and offset, got {}", t.str());
  if (declared.size() != 1 || !is_float(declared[0].dtype))
    fail("random_uniform needs one float result type");
  return {declared[0]};
}

std::vector<Type> infer_iota(std::string_view, std::span<const Type>,
                             const Attrs &attrs,
                             std::span<const Type> declared) {
  if (declared.size() != 1)
    fail("iota needs one result type");
  const Type &t = declared[0];
  if (t.dtype == DType::boolean)
    fail("iota needs a numeric result type, got {}", t.str());
  if (t.rank() == 0)
    fail("iota needs a result of rank >= 1, got {}", t.str());
  int64_t axis = attr_int(Op::Iota, attrs, "axis");
  if (axis < 0 || axis >= t.rank())
    fail("iota axis {} is out of range for {}", axis, t.str());
  return {t};
}

std::vector<Type> infer_cast(std::string_view, std::span<const Type> in,
                             const Attrs &attrs, std::span<const Type>) {
  return one({dtype_attr(attrs, "dtype"), in[0].shape});
}

std::vector<Type> infer_unary(std::string_view op, std::span<const Type> in,
                              const Attrs &, std::span<const Type>) {
  if (in[0].dtype == DType::boolean)
    fail("{} expects a numeric operand, got {}", op, in[0].str());
  return one(in[0]);
}

std::vector<Type> infer_unary_float(std::string_view op,
                                    std::span<const Type> in, const Attrs &,
                                    std::span<const Type>) {
  require_float(in[0], op);
  return one(in[0]);
}

std::vector<Type> infer_gelu(std::string_view op, std::span<const Type> in,
                             const Attrs &attrs, std::span<const Type>) {
  require_float(in[0], op);
  if (const AttrValue *v = attrs.find("approximate")) {
    const std::string *s = std::get_if<std::string>(v);
    if (!s || (*s != "none" && *s != "tanh"))
      fail("gelu attribute 'approximate' must be \"none\" or \"tanh\", got "
           "{}",
           attr_str(*v));
  }
  return one(in[0]);
}

std::vector<Type> infer_clamp(std::string_view op, std::span<const Type> in,
                              const Attrs &attrs, std::span<const Type>) {
  if (in[0].dtype == DType::boolean)
    fail("{} expects a numeric operand, got {}", op, in[0].str());
  const AttrValue *lo = attrs.find("min"), *hi = attrs.find("max");
  if (!lo && !hi)
    fail("clamp needs attribute 'min' or 'max' (or both)");
  // An integer tensor keeps its dtype (torch would promote to float for a
  // fractional bound), so its bounds must be integers.
  if (!is_float(in[0].dtype))
    for (const auto &[name, v] : {std::pair{"min", lo}, std::pair{"max", hi}})
      if (const double *d = v ? std::get_if<double>(v) : nullptr;
          d && *d != std::trunc(*d))
        fail("clamp of {} needs integer bounds, got {} = {}", in[0].str(), name,
             attr_str(*v));
  return one(in[0]);
}

std::vector<Type> infer_binary(std::string_view op, std::span<const Type> in,
                               const Attrs &, std::span<const Type>) {
  same_dtype(in[0], in[1], op);
  if (in[0].dtype == DType::boolean)
    fail("{} expects numeric operands, got {}", op, in[0].str());
  return one({in[0].dtype, broadcast_or_fail(in[0].shape, in[1].shape, op)});
}

std::vector<Type> infer_binary_float(std::string_view op,
                                     std::span<const Type> in,
                                     const Attrs &attrs,
                                     std::span<const Type> declared) {
  require_float(in[0], op);
  return infer_binary(op, in, attrs, declared);
}

std::vector<Type> infer_compare(std::string_view op, std::span<const Type> in,
                                const Attrs &, std::span<const Type>) {
  same_dtype(in[0], in[1], op);
  return one({DType::boolean, broadcast_or_fail(in[0].shape, in[1].shape, op)});
}

std::vector<Type> infer_where(std::string_view, std::span<const Type> in,
                              const Attrs &, std::span<const Type>) {
  if (in[0].dtype != DType::boolean)
    fail("where expects a bool condition, got {}", in[0].str());
  same_dtype(in[1], in[2], "where");
  Shape s = broadcast_or_fail(in[0].shape, in[1].shape, "where");
  s = broadcast_or_fail(s, in[2].shape, "where");
  return one({in[1].dtype, s});
}

std::vector<Type> infer_reduce(std::string_view op, std::span<const Type> in,
                               const Attrs &attrs, std::span<const Type>) {
  if (in[0].dtype == DType::boolean)
    fail("{} expects a numeric operand, got {}", op, in[0].str());
  std::vector<int> axes = reduce_axes(attrs, in[0].rank());
  bool keep = attr_bool(*op_by_name(op), attrs, "keepdims");
  Shape out;
  for (int i = 0; i < in[0].rank(); ++i) {
    bool reduced = std::find(axes.begin(), axes.end(), i) != axes.end();
    if (!reduced)
      out.push_back(in[0].shape[i]);
    else if (keep)
      out.push_back(1);
  }
  return one({in[0].dtype, out});
}

std::vector<Type> infer_softmax(std::string_view op, std::span<const Type> in,
                                const Attrs &attrs, std::span<const Type>) {
  require_float(in[0], op);
  if (in[0].rank() == 0)
    fail("{} expects rank >= 1, got {}", op, in[0].str());
  normalize_axis(attr_int(*op_by_name(op), attrs, "axis"), in[0].rank());
  return one(in[0]);
}

std::vector<Type> infer_matmul(std::string_view, std::span<const Type> in,
                               const Attrs &, std::span<const Type>) {
  const Type &a = in[0], &b = in[1];
  same_dtype(a, b, "matmul");
  if (!is_float(a.dtype))
    fail("matmul expects float operands, got {}", a.str());
  if (a.rank() < 2 || b.rank() < 2)
    fail("matmul expects operands of rank >= 2, got {} and {}", a.str(),
         b.str());
  int64_t k = b.shape[b.rank() - 2];
  if (a.shape.back() != k)
    fail("matmul expects [*,{}], got {}", k, shape_str(a.shape));
  Shape ab(a.shape.begin(), a.shape.end() - 2);
  Shape bb(b.shape.begin(), b.shape.end() - 2);
  Shape out = broadcast_or_fail(ab, bb, "matmul");
  out.push_back(a.shape[a.rank() - 2]);
  out.push_back(b.shape.back());
  return one({a.dtype, out});
}

std::vector<Type> infer_transpose(std::string_view, std::span<const Type> in,
                                  const Attrs &attrs, std::span<const Type>) {
  const auto &perm = attrs.get_ints("perm");
  int r = in[0].rank();
  if (static_cast<int>(perm.size()) != r)
    fail("transpose perm has {} entries for rank {}", perm.size(), r);
  std::vector<bool> seen(r, false);
  Shape out;
  for (int64_t p : perm) {
    if (p < 0 || p >= r || seen[p])
      fail("transpose perm [{}] is not a permutation of {} axes",
           fmt::join(perm, ", "), r);
    seen[p] = true;
    out.push_back(in[0].shape[p]);
  }
  return one({in[0].dtype, out});
}

std::vector<Type> infer_concat(std::string_view, std::span<const Type> in,
                               const Attrs &attrs, std::span<const Type>) {
  if (in.empty())
    fail("concat expects at least one operand");
  const Type &t0 = in[0];
  if (t0.rank() == 0)
    fail("concat expects operands of rank >= 1, got {}", t0.str());
  int64_t raw = attr_int(Op::Concat, attrs, "axis");
  if (raw < -t0.rank() || raw >= t0.rank())
    fail("concat axis {} is out of range for rank {}", raw, t0.rank());
  int axis = normalize_axis(raw, t0.rank());
  Shape out = t0.shape;
  for (size_t i = 1; i < in.size(); ++i) {
    const Type &t = in[i];
    if (t.dtype != t0.dtype)
      fail("concat operands must have one dtype, got {} (operand 0) and {} "
           "(operand {})",
           t0.str(), t.str(), i);
    bool same = t.rank() == t0.rank();
    for (int d = 0; same && d < t0.rank(); ++d)
      same = d == axis || t.shape[d] == t0.shape[d];
    if (!same)
      fail("concat along axis {}: operand {} is {}, operand 0 is {} (shapes "
           "must match except along the axis)",
           axis, i, t.str(), t0.str());
    if (__builtin_add_overflow(out[axis], t.shape[axis], &out[axis]))
      fail("concat along axis {} overflows the dimension", axis);
  }
  return one({t0.dtype, out});
}

SliceBounds slice_bounds(const Shape &in, const Attrs &attrs) {
  const auto &starts = attrs.get_ints("starts");
  const auto &stops = attrs.get_ints("stops");
  size_t r = in.size();
  if (starts.size() != r || stops.size() != r)
    fail("slice of a rank-{} operand needs {} starts and stops, got {} and {}",
         r, r, starts.size(), stops.size());
  std::vector<int64_t> steps(r, 1);
  if (attrs.has("steps")) {
    steps = attrs.get_ints("steps");
    if (steps.size() != r)
      fail("slice of a rank-{} operand needs {} steps, got {}", r, r,
           steps.size());
  }
  auto clamp = [](int64_t v, int64_t n) {
    if (v < 0)
      v = v < -n ? 0 : v + n;
    return std::min(v, n);
  };
  SliceBounds s;
  for (size_t d = 0; d < r; ++d) {
    int64_t n = in[d];
    if (steps[d] < 1)
      fail("slice step {} on axis {} is not supported (steps must be >= 1)",
           steps[d], d);
    int64_t b = clamp(starts[d], n), e = clamp(stops[d], n);
    if (e <= b)
      fail("slice [{}:{}:{}] of axis {} (size {}) selects no elements",
           starts[d], stops[d], steps[d], d, n);
    s.start.push_back(b);
    s.step.push_back(steps[d]);
    s.out.push_back((e - b - 1) / steps[d] + 1); // no overflow for big steps
  }
  return s;
}

std::vector<Type> infer_slice(std::string_view, std::span<const Type> in,
                              const Attrs &attrs, std::span<const Type>) {
  return one({in[0].dtype, slice_bounds(in[0].shape, attrs).out});
}

PadBounds pad_bounds(const Shape &in, const Attrs &attrs) {
  const auto &pads = attrs.get_ints("pads");
  size_t r = in.size();
  if (pads.size() != 2 * r)
    fail("pad of a rank-{} operand needs {} pads [before_0, after_0, ...], "
         "got {}",
         r, 2 * r, pads.size());
  std::vector<int64_t> interior(r, 0);
  if (attrs.has("interior")) {
    interior = attrs.get_ints("interior");
    if (interior.size() != r)
      fail("pad of a rank-{} operand needs an interior entry per axis, got "
           "{}",
           r, interior.size());
  }
  PadBounds p;
  p.value = attrs.has("value") ? attrs.get_float("value") : 0.0;
  for (size_t d = 0; d < r; ++d) {
    int64_t b = pads[2 * d], a = pads[2 * d + 1], i = interior[d];
    if (b < 0 || a < 0 || i < 0)
      fail("pad amounts must be >= 0, got pads [{}] interior [{}]",
           fmt::join(pads, ", "), fmt::join(interior, ", "));
    p.before.push_back(b);
    p.after.push_back(a);
    p.interior.push_back(i);
    int64_t size = 0;
    if (__builtin_mul_overflow(std::max<int64_t>(in[d] - 1, 0), i, &size) ||
        __builtin_add_overflow(size, in[d], &size) ||
        __builtin_add_overflow(size, b, &size) ||
        __builtin_add_overflow(size, a, &size))
      fail("pad of axis {} (size {}) by [{}, {}] interior {} overflows", d,
           in[d], b, a, i);
    p.out.push_back(size);
  }
  return p;
}

std::vector<Type> infer_pad(std::string_view, std::span<const Type> in,
                            const Attrs &attrs, std::span<const Type>) {
  PadBounds p = pad_bounds(in[0].shape, attrs);
  if (!is_float(in[0].dtype) &&
      (p.value != std::trunc(p.value) ||
       (in[0].dtype == DType::boolean && p.value != 0 && p.value != 1)))
    fail("pad value {} is not representable in {}", p.value,
         dtype_name(in[0].dtype));
  return one({in[0].dtype, p.out});
}

std::vector<Type> infer_reshape(std::string_view, std::span<const Type> in,
                                const Attrs &attrs, std::span<const Type>) {
  // One entry may be -1 (torch's reshape/view): the size that keeps the
  // element count. The attribute keeps the -1; the result type has the size.
  Shape shape = attrs.get_ints("shape");
  int infer_at = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1 && infer_at >= 0)
      fail("reshape to {} has more than one -1 dimension", shape_str(shape));
    if (shape[i] == -1)
      infer_at = static_cast<int>(i);
    else if (shape[i] < 0)
      fail("reshape to {} has a negative dimension", shape_str(shape));
  }
  // Checked before numel(), whose own error would not name the op.
  int64_t n = 1;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, std::max<int64_t>(d, 1), &n) ||
        n > (int64_t{1} << 56))
      fail("reshape to {} has more than 2^56 elements", shape_str(shape));
  if (infer_at >= 0) {
    int64_t known = 1;
    for (size_t i = 0; i < shape.size(); ++i)
      if (static_cast<int>(i) != infer_at)
        known *= shape[i];
    if (known == 0)
      fail("reshape cannot infer the -1 of {} for {}: the other dimensions "
           "hold 0 elements",
           shape_str(shape), in[0].str());
    if (in[0].numel() % known != 0)
      fail("reshape cannot turn {} ({} elements) into {}: {} is not a "
           "multiple of {}",
           in[0].str(), in[0].numel(), shape_str(shape), in[0].numel(), known);
    shape[infer_at] = in[0].numel() / known;
  }
  if (numel(shape) != in[0].numel())
    fail("reshape cannot turn {} ({} elements) into {}", in[0].str(),
         in[0].numel(), shape_str(shape));
  return one({in[0].dtype, shape});
}

std::vector<Type> infer_broadcast_to(std::string_view, std::span<const Type> in,
                                     const Attrs &attrs,
                                     std::span<const Type>) {
  const auto &shape = attrs.get_ints("shape");
  // broadcast_shapes stretches a 1 to any size, a negative one included.
  for (int64_t d : shape)
    if (d < 0)
      fail("broadcast_to {} has a negative dimension", shape_str(shape));
  if (!broadcasts_to(in[0].shape, shape))
    fail("broadcast_to cannot broadcast {} to {}", shape_str(in[0].shape),
         shape_str(shape));
  return one({in[0].dtype, shape});
}

std::vector<Type> infer_one_hot(std::string_view, std::span<const Type> in,
                                const Attrs &attrs, std::span<const Type>) {
  if (!is_int(in[0].dtype))
    fail("one_hot expects integer labels, got {}", in[0].str());
  int64_t c = attrs.get_int("num_classes");
  if (c <= 0)
    fail("one_hot needs num_classes > 0, got {}", c);
  DType d = attr_dtype(Op::OneHot, attrs, "dtype");
  Shape s = in[0].shape;
  s.push_back(c);
  return one({d, s});
}

} // namespace kiln
