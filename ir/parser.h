// The .kir parser: the exact inverse of ir/printer.h (whose header comment
// holds the grammar), so print(parse(print(g))) == print(g).
//
// Nodes are built through the Builder with their declared result types, so
// every node's types are inferred and compared with the text. The parsed
// graph is verified before it is returned. Every problem throws kiln::Error
// with the message `FILE:LINE:COL: error: what`, pointing at the offending
// token (verifier errors point at the graph they were found in).
#pragma once

#include "ir/graph.h"

#include <memory>
#include <string_view>

namespace kiln {

std::unique_ptr<Graph> parse(std::string_view text,
                             std::string_view filename = "<input>");

} // namespace kiln
