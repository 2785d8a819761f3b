// The verifier: checks that a graph is well formed and throws kiln::Error
// naming the node and what is wrong.
#pragma once

#include "ir/graph.h"

namespace kiln {

// Checks: operands defined before use, arity, result types equal to the
// inferred ones, fused bodies (recursively) matching their node, outputs
// defined, in-place aliases naming a param/state input of the same type and
// no input aliased twice.
void verify(const Graph &g);

} // namespace kiln
