// Small helpers shared by the rewriting passes.
#pragma once

#include "ir/graph.h"

#include <optional>

namespace kiln {

// The value of a fill constant (`constant {value = v}`), or nullopt when `v`
// is not produced by one.
std::optional<double> const_value(const Value *v);
bool is_const(const Value *v, double x);

// Reorders g's nodes topologically, keeping the current order wherever the
// dependencies allow (Kahn's algorithm taking the earliest ready node).
// Throws kiln::Error when the graph has a cycle.
void topo_sort(Graph &g);

// Removes the nodes none of whose results reach an output; recurses into
// fused bodies. Returns true when something was removed.
bool remove_dead_nodes(Graph &g);

} // namespace kiln
