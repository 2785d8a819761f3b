// The `cse` pass: common subexpression elimination.
#pragma once

#include "ir/graph.h"

namespace kiln {

bool run_cse(Graph &g);

} // namespace kiln
