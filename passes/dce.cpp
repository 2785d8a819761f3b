// dce: a backward walk from the graph's outputs marks the values they need;
// nodes none of whose results are marked are removed, in fused bodies too.
// Random ops have no side effect (the generator is counter based), so an
// unused draw goes as well. Graph inputs are never removed, even unused
// ones: they are the executable's calling convention.
#include "passes/dce.h"

#include "passes/rewrite.h"

namespace kiln {

bool run_dce(Graph &g) { return remove_dead_nodes(g); }

} // namespace kiln
