// HostTensor: the reference interpreter's value. Every element is held as a
// double whatever the dtype; after each op, values of a narrower dtype are
// rounded to it (f32 through float, integers truncated, bool to 0/1), so an
// f32 graph behaves like f32 arithmetic with exactly rounded operations.
#pragma once

#include "ir/types.h"

#include <vector>

namespace kiln {

struct HostTensor {
  Type type;
  std::vector<double> data;

  HostTensor() = default;
  explicit HostTensor(Type t) : type(std::move(t)), data(type.numel(), 0.0) {}
  HostTensor(Type t, std::vector<double> d)
      : type(std::move(t)), data(std::move(d)) {}

  int64_t numel() const { return static_cast<int64_t>(data.size()); }
  double item() const { return data.at(0); }
};

// Rounds a double to what `dtype` can hold.
double round_to(DType dtype, double x);

} // namespace kiln
