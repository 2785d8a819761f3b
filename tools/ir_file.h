// Reading a .kir file (or stdin for "-") into a verified graph, for the
// subcommands that take IR text.
#pragma once

#include "ir/graph.h"

#include <memory>
#include <string>

namespace kiln {

// The whole file as bytes; "-" reads stdin. Throws kiln::Error naming the
// path when it cannot be read.
std::string read_source(const std::string &path);

// read_source + parse; parse errors are located as `PATH:LINE:COL`
// (`<stdin>` for "-").
std::unique_ptr<Graph> load_graph(const std::string &path);

} // namespace kiln
