// Reading a .kir file (or stdin for "-") into a verified graph, and writing
// text to a file or stdout, for the subcommands that take and print IR.
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

// Writes `text` to `path`, or to stdout when `path` is empty or "-". Throws
// kiln::Error naming the path when it cannot be written.
void write_output(const std::string &path, const std::string &text);

} // namespace kiln
