// The text form of a graph (.kir). Grammar, informally:
//
//   graph    := 'graph' '@' NAME '(' [input (',' input)*] ')' '{' NL
//               node* 'return' [result (',' result)*] NL '}'
//   input    := ['param' | 'state'] '%' NAME ':' type
//   node     := '%' NAME (',' '%' NAME)* '=' OP '(' [operands] ')'
//               ['{' attr (',' attr)* '}'] ':' type (',' type)* [graph] NL
//   attr     := NAME '=' (INT | FLOAT | '[' INT, ... ']' | STRING | 'true'
//               | 'false')
//   type     := DTYPE '[' [INT (',' INT)*] ']'          e.g. f32[64,784]
//   result   := '%' NAME ['->' '%' NAME]   (output updates that input in place)
//
// A fused node's body follows its types as a nested graph. `//` starts a
// comment to the end of the line. Values whose name is empty or all digits
// are numbered %0, %1, ... in order of definition in each graph, so
// print(parse(text)) == text for every printed graph.
#pragma once

#include "ir/graph.h"

#include <functional>
#include <string>

namespace kiln {

struct PrintOptions {
  // Optional trailing comment for a node (e.g. its buffer plan); empty
  // string prints nothing.
  std::function<std::string(const Node &)> annotate;
};

std::string print(const Graph &g, const PrintOptions &opts = {});

} // namespace kiln
