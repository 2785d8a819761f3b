// The `fuse-elementwise` pass: vertical fusion of elementwise chains into
// `fused` nodes of kind "elementwise" or "reduction". The contract the code
// generators rely on is in fuse_elementwise.cpp's header comment.
#pragma once

#include "ir/graph.h"

namespace kiln {

bool run_fuse_elementwise(Graph &g);

// Renames the bodies of g's fused nodes fused_0, fused_1, ... in node order
// (stable kernel names for printing and code generation).
void number_fused_bodies(Graph &g);

} // namespace kiln
