// The `fuse-optimizer` pass: every parameter's update kernel in one
// multi-tensor launch.
#pragma once

#include "ir/graph.h"

namespace kiln {

bool run_fuse_optimizer(Graph &g);

} // namespace kiln
