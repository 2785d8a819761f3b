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
#include <set>
#include <string>
#include <unordered_map>

namespace kiln {

// The names the printer gives values in one graph scope (a body is a scope
// of its own): a value whose name is empty or all digits is numbered in
// definition order, skipping numbers taken; a named one keeps its name,
// suffixed _1, _2, ... on a clash. Names come without the '%'. Other
// writers of graphs (Graphviz DOT) use it so their names match the text.
class ValueNames {
public:
  std::string define(const Value *v);
  // The name given at define, or "<undefined>".
  std::string use(const Value *v) const;

private:
  std::unordered_map<const Value *, std::string> names_;
  std::set<std::string> used_;
  int next_ = 0;
};

struct PrintOptions {
  // Optional trailing comment for a node (e.g. its buffer plan); empty
  // string prints nothing.
  std::function<std::string(const Node &)> annotate;
};

std::string print(const Graph &g, const PrintOptions &opts = {});

} // namespace kiln
