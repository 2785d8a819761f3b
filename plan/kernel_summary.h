// What a graph launches, one entry per launch of its execution plan
// (plan/plan.h): its kind, the ops it holds and the bytes it reads and
// writes. Used by `kiln ir --stage fused` and the tests that count kernels.
#pragma once

#include "ir/graph.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

struct KernelInfo {
  std::string
      kind;        // gemm, elementwise, reduction, multi_tensor, copy or the op
  std::string ops; // "add, relu" (a gemm lists its folded transposes)
  int64_t bytes_read = 0, bytes_written = 0;
};

// The launches of lower(g): a fused node is a kernel; a matmul a gemm (a
// transpose of the last two axes read only by matmuls is folded into them
// and listed in its ops); reshapes and constants are buffers, not launches;
// any other node is a kernel of its own; an output copied at the end of the
// run is a copy.
std::vector<KernelInfo> summarize_kernels(const Graph &g);

// One line per kernel and a total line.
std::string format_kernel_summary(const std::vector<KernelInfo> &kernels);

} // namespace kiln
