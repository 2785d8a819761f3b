// The geometry of gather and scatter_add (ir/ops.def) that the interpreter,
// the CPU host loops and the CUDA emitter share: both ops see their data as
// [outer, len, inner] along `axis` and their indices flattened to `count`.
// gather reads out[o, j, i] = x[o, indices[j], i] (x is [outer, len, inner],
// out [outer, count, inner]); scatter_add is its adjoint, out [outer, len,
// inner] (len = size) += updates[o, j, i] at [o, indices[j], i].
#pragma once

#include "ir/graph.h"

#include <cstdint>
#include <string>

namespace kiln {

struct GatherGeometry {
  int axis = 0;
  int64_t outer = 1, len = 0, count = 0, inner = 1;
  DType index_dtype = DType::i64;
};

// The geometry of a gather or scatter_add node (already type-checked).
GatherGeometry gather_geometry(const Node &n);

// The message of an out-of-range index: names the op, the index value, its
// position in the indices (a multi-index) and the valid range.
std::string gather_index_error(std::string_view op, int64_t value,
                               const Shape &indices, int64_t position,
                               int64_t len, int axis);

} // namespace kiln
