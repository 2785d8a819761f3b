// Running passes by name from the command line. A stand-in for the
// PassManager (print-after-all, timing, KILN_DUMP) that will replace it:
// callers only use run_pipeline.
#pragma once

#include "ir/graph.h"

#include <string>
#include <string_view>
#include <vector>

namespace kiln {

// "a,b,c" -> {"a", "b", "c"}; empty entries are dropped.
std::vector<std::string> split_pass_list(std::string_view list);

// Runs the named passes in order on `g`, verifying the graph after each.
// Every name is checked before any pass runs; an unknown one throws
// kiln::Error listing the known passes.
void run_pipeline(Graph &g, const std::vector<std::string> &passes);

} // namespace kiln
