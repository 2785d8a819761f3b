// A graph as Graphviz DOT, for `kiln ir --dot` and `kiln opt --dot`
// (`kiln ir --model mlp --stage fused --dot | dot -Tsvg > step.svg`).
//
// What the picture shows:
//   - graph inputs as boxes: data plain, `param` inputs filled orange
//     (shape box3d), `state` inputs filled blue (shape cylinder); an input
//     with a range shows it;
//   - every node as "%result = op" (short attributes below it); constants
//     as small notes;
//   - a fused node as a cluster "fused %r (kind)" holding its body: the
//     body's inputs (small points, one per operand), its ops, and its
//     results; edges into and out of the cluster go to those;
//   - every edge labelled with the type it carries (f32[64,256]);
//   - graph outputs as "return i %name" (house shapes); an output that
//     updates an input in place (`return %a -> %w`) is dashed red with an
//     edge back to the input labelled "updates %w".
// Value names are the printer's (ir/printer.h), so the picture and the
// text of the same graph agree.
#pragma once

#include "ir/graph.h"

#include <string>

namespace kiln {

std::string graph_to_dot(const Graph &g);

} // namespace kiln
