// HostTensor: the reference interpreter's value. Every element is held as a
// double whatever the dtype; after each op, values of a narrower dtype are
// rounded to it (f32 through float, integers truncated toward zero and
// saturated to their range with NaN -> 0, bool to 0/1), so an f32 graph
// behaves like f32 arithmetic with exactly rounded operations.
//
// A double holds integers exactly only within +-2^53, so an i64 tensor also
// carries its exact values in `i64`. Inside the interpreter every i64 value
// has them: graph inputs and outputs, and the ops that move values without
// arithmetic (reshape, transpose, broadcast_to, where, an i64 cast of an
// integer, a constant, iota, fused bodies) keep them exact; arithmetic on
// i64 is carried out in double as on the compiled backends (exact within
// +-2^53) and its result saturated to i64. Code that fills only `data`
// (i64 empty) means the values `data` holds.
#pragma once

#include "ir/types.h"

#include <string_view>
#include <vector>

namespace kiln {

struct HostTensor {
  Type type;
  std::vector<double> data;
  // The exact values of an i64 tensor, or empty (see above).
  std::vector<int64_t> i64;

  HostTensor() = default;
  explicit HostTensor(Type t) : type(std::move(t)), data(type.numel(), 0.0) {}
  HostTensor(Type t, std::vector<double> d)
      : type(std::move(t)), data(std::move(d)) {}

  int64_t numel() const { return static_cast<int64_t>(data.size()); }
  double item() const { return data.at(0); }
  // Element i as an integer: exact from `i64` when present, else `data`
  // converted as a cast to i64 does.
  int64_t int_at(int64_t i) const;
};

// Rounds a double to what `dtype` can hold. Float to integer truncates
// toward zero, saturates to the integer type's range and maps NaN to 0 (as
// CUDA's cvt.rzi and torch on CUDA; every backend casts this way).
double round_to(DType dtype, double x);
// The same conversion, to the integer itself.
int64_t saturate_to_i64(double x);
int32_t saturate_to_i32(double x);

// Throws kiln::Error naming `what` and the size when one host buffer of
// `bytes` cannot be had: more than this machine's physical memory. Checked
// before allocating, because a failed huge allocation aborts under ASan.
void check_host_allocation(int64_t bytes, std::string_view what);

} // namespace kiln
