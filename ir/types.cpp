#include "ir/types.h"

#include "ir/error.h"

#include <fmt/format.h>

#include <algorithm>

namespace kiln {

std::string_view dtype_name(DType t) {
  switch (t) {
  case DType::f32:
    return "f32";
  case DType::f64:
    return "f64";
  case DType::i32:
    return "i32";
  case DType::i64:
    return "i64";
  case DType::boolean:
    return "bool";
  }
  return "?";
}

std::optional<DType> parse_dtype(std::string_view s) {
  for (DType t :
       {DType::f32, DType::f64, DType::i32, DType::i64, DType::boolean})
    if (dtype_name(t) == s)
      return t;
  return std::nullopt;
}

size_t dtype_size(DType t) {
  switch (t) {
  case DType::f32:
  case DType::i32:
    return 4;
  case DType::f64:
  case DType::i64:
    return 8;
  case DType::boolean:
    return 1;
  }
  return 0;
}

// The product of the dimensions, zeros counted as 1, is bounded so that
// element counts, byte sizes (8 bytes an element) and every stride fit in
// int64 with room to spare; the parser applies the same bound to types.
int64_t numel(const Shape &s) {
  constexpr int64_t kMaxElements = int64_t{1} << 56;
  int64_t n = 1;
  bool empty = false;
  for (int64_t d : s) {
    if (d < 0)
      fail("shape {} has a negative dimension", shape_str(s));
    empty = empty || d == 0;
    if (__builtin_mul_overflow(n, std::max<int64_t>(d, 1), &n) ||
        n > kMaxElements)
      fail("shape {} has more than 2^56 elements", shape_str(s));
  }
  return empty ? 0 : n;
}

std::string shape_str(const Shape &s) {
  return fmt::format("[{}]", fmt::join(s, ","));
}

std::string Type::str() const {
  return fmt::format("{}{}", dtype_name(dtype), shape_str(shape));
}

std::optional<Shape> broadcast_shapes(const Shape &a, const Shape &b) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      return std::nullopt;
    out[i] = da == 1 ? db : da;
  }
  return out;
}

bool broadcasts_to(const Shape &from, const Shape &to) {
  auto s = broadcast_shapes(from, to);
  return s && *s == to;
}

std::vector<int64_t> contiguous_strides(const Shape &s) {
  std::vector<int64_t> st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

std::vector<int64_t> broadcast_strides(const Shape &from, const Shape &to) {
  std::vector<int64_t> st(to.size(), 0);
  auto fs = contiguous_strides(from);
  size_t off = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i)
    st[off + i] = from[i] == 1 ? 0 : fs[i];
  return st;
}

int normalize_axis(int64_t axis, int rank) {
  int64_t a = axis < 0 ? axis + rank : axis;
  // A scalar has no axes (as numpy): reducing axis 0 of a rank-0 value
  // would index past its empty shape.
  if (a < 0 || a >= rank)
    fail("axis {} is out of range for rank {}", axis, rank);
  return static_cast<int>(a);
}

} // namespace kiln
