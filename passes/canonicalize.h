// The `canonicalize` pass: algebraic identities and constant folding.
#pragma once

#include "ir/graph.h"

namespace kiln {

bool run_canonicalize(Graph &g);

} // namespace kiln
