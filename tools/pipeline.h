// Running passes by name from the command line, through the PassManager
// (passes/pass_manager.h: print-after-all, timing, KILN_DUMP).
#pragma once

#include "ir/graph.h"
#include "passes/pass_manager.h"

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

// The same with the pass manager's options (printing, timing, dumps,
// verify-each as `opts` says); returns the resulting graph as text,
// annotated by the last analysis (memory-plan) when it ran last.
std::string run_pipeline(Graph &g, const std::vector<std::string> &passes,
                         PassOptions opts);

} // namespace kiln
