// The `dce` pass: dead code elimination.
#pragma once

#include "ir/graph.h"

namespace kiln {

bool run_dce(Graph &g);

} // namespace kiln
