// The `memory-plan` pass: an analysis that computes the buffer assignment
// (plan/memory_plan.h) and leaves the graph as it is; the pass manager then
// prints the graph annotated with it.
#pragma once

#include "ir/graph.h"

#include <string>

namespace kiln {

// Plans the buffers (throwing a located error when they cannot be planned,
// e.g. sizes overflow); returns false: the graph is unchanged.
bool run_memory_plan(Graph &g);

// The graph with the plan's summary in a header comment and each node's
// buffers as annotations.
std::string print_memory_plan(const Graph &g);

} // namespace kiln
