// The `decompose-windows` pass: conv2d and avg_pool2d become im2col and a
// batched matmul or a mean, the pieces every backend already runs fast
// (a GEMM library call and a generated reduction).
#pragma once

#include "ir/graph.h"

namespace kiln {

bool run_decompose_windows(Graph &g);

} // namespace kiln
