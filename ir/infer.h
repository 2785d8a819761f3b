// The parts of shape inference (ir/infer.cpp) that code outside the op table
// uses; the inference functions themselves are declared in ir/op_impl.h.
#pragma once

#include "ir/attrs.h"

#include <vector>

namespace kiln {

// The sorted, normalized axes a reduction node reduces: its `axes`
// attribute, or every axis of a rank-`rank` operand when it has none.
// Throws kiln::Error when an axis is out of range or repeats.
std::vector<int> reduction_axes(const Attrs &attrs, int rank);

} // namespace kiln
