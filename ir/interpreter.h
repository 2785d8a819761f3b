// The reference interpreter: runs any graph on host memory with plain loops.
// It is the oracle of every numeric test and never the fast path.
#pragma once

#include "ir/graph.h"
#include "ir/host_tensor.h"

#include <vector>

namespace kiln {

// Runs `g` with `inputs` given in graph-input order and returns the outputs
// in order. Throws kiln::Error when an input's count or type is wrong.
std::vector<HostTensor> interpret(const Graph &g,
                                  const std::vector<HostTensor> &inputs);

} // namespace kiln
