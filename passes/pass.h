// Passes: named functions from a graph to a graph that report whether they
// changed it. The table of passes is passes/passes.def.
#pragma once

#include "ir/graph.h"

#include <string>
#include <string_view>
#include <vector>

namespace kiln {

struct PassInfo {
  std::string_view name; // kebab-case, as written in --passes=
  bool (*run)(Graph &);  // true when the graph changed
  // An analysis: the graph printed with the analysis's result (nullptr for
  // a transformation).
  std::string (*print)(const Graph &);
  std::string_view summary;
};

const std::vector<PassInfo> &all_passes();
const PassInfo *find_pass(std::string_view name);

} // namespace kiln
