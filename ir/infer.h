// The parts of shape inference (ir/infer.cpp) that code outside the op table
// uses; the inference functions themselves are declared in ir/op_impl.h.
#pragma once

#include "ir/attrs.h"
#include "ir/types.h"

#include <vector>

namespace kiln {

// The sorted, normalized axes a reduction node reduces: its `axes`
// attribute, or every axis of a rank-`rank` operand when it has none.
// Throws kiln::Error when an axis is out of range or repeats.
std::vector<int> reduction_axes(const Attrs &attrs, int rank);

// A slice node's bounds made concrete by numpy/PyTorch's rules (a negative
// start or stop counts from the end, both are clamped to [0, n]): element o
// of result axis d is element start[d] + o * step[d] of the operand's axis
// d. Throws kiln::Error on a wrong entry count, a step < 1 or an empty
// result.
struct SliceBounds {
  std::vector<int64_t> start, step;
  Shape out;
};
SliceBounds slice_bounds(const Shape &in, const Attrs &attrs);

// A pad node's attributes made concrete: element o of result axis d is
// element (o - before[d]) / (interior[d] + 1) of the operand's axis d when
// that divides exactly and is in range, else `value`.
struct PadBounds {
  std::vector<int64_t> before, after, interior;
  double value = 0;
  Shape out;
};
PadBounds pad_bounds(const Shape &in, const Attrs &attrs);

} // namespace kiln
