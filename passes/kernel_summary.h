// What a fused graph launches: one entry per kernel with its kind, the ops
// it holds and the bytes it reads and writes. Used by `kiln ir --stage
// fused` and the tests that count kernels.
#pragma once

#include "ir/graph.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

struct KernelInfo {
  std::string kind; // gemm, elementwise, reduction, multi_tensor, or the op
  std::string ops;  // "add, relu" (a gemm lists its folded transposes)
  int64_t bytes_read = 0, bytes_written = 0;
};

// Counting rules: every fused node is a kernel; matmul is a gemm, and a
// transpose whose only users are matmuls is folded into them (a GEMM reads
// a transposed operand through its trans flag); reshape is a view and a
// scalar constant a launch argument, neither a kernel; any other node
// (one_hot, transpose, broadcast_to, a non-scalar constant, ...) is a
// kernel of its own.
std::vector<KernelInfo> summarize_kernels(const Graph &g);

// One line per kernel and a total line.
std::string format_kernel_summary(const std::vector<KernelInfo> &kernels);

} // namespace kiln
