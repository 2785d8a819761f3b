// The parts of a fused "reduction" body, as the contract in
// passes/fuse_elementwise.cpp defines them: a prologue over the reduction's
// operand space X, ONE reduction, an epilogue on the reduced value (after
// sum/mean/amax only), output 0 the reduced value and outputs 1.. prologue
// values of shape X. Both code generators and the tests' contract check
// read a body through this one function.
#pragma once

#include "ir/graph.h"

#include <vector>

namespace kiln {

struct ReductionBody {
  int reduce = -1;            // index of the reduction node in body.nodes()
  std::vector<bool> prologue; // per body node: needed by the reduction's
                              // operand or by an extra output
  std::vector<bool> epilogue; // per body node: after the reduction, needed
                              // by output 0
  std::vector<int> extras;    // body output indices 1.. (shape X)
};

// Splits a reduction body; throws kiln::Error saying which rule it breaks.
ReductionBody split_reduction_body(const Graph &body);

} // namespace kiln
