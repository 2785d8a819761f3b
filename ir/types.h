// Element types, static shapes and numpy broadcasting.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

enum class DType : uint8_t { f32, f64, i32, i64, boolean };

std::string_view dtype_name(DType t);
std::optional<DType> parse_dtype(std::string_view s);
size_t dtype_size(DType t);
inline bool is_float(DType t) { return t == DType::f32 || t == DType::f64; }
inline bool is_int(DType t) { return t == DType::i32 || t == DType::i64; }

using Shape = std::vector<int64_t>;

int64_t numel(const Shape &s);
std::string shape_str(const Shape &s); // "[64,784]"

// The static type of an SSA value: f32[64,784]; a scalar is f32[].
struct Type {
  DType dtype = DType::f32;
  Shape shape;

  int rank() const { return static_cast<int>(shape.size()); }
  int64_t numel() const { return kiln::numel(shape); }
  size_t bytes() const { return numel() * dtype_size(dtype); }
  std::string str() const;
  bool operator==(const Type &) const = default;
};

// numpy broadcasting: align trailing axes; each pair must be equal or 1.
// Returns nullopt when the shapes do not broadcast.
std::optional<Shape> broadcast_shapes(const Shape &a, const Shape &b);
// True when `from` broadcasts to exactly `to`.
bool broadcasts_to(const Shape &from, const Shape &to);
// Row-major strides of a contiguous tensor of this shape.
std::vector<int64_t> contiguous_strides(const Shape &s);
// Strides for reading an operand of shape `from` broadcast to `to`
// (0 on broadcast axes), expressed over `to`'s axes.
std::vector<int64_t> broadcast_strides(const Shape &from, const Shape &to);
// Normalize a possibly negative axis; throws kiln::Error when out of range.
int normalize_axis(int64_t axis, int rank);

} // namespace kiln
