// Reverse-mode automatic differentiation on the IR.
#pragma once

#include "ir/graph.h"

#include <vector>

namespace kiln {

// Appends to `g` the nodes computing d(loss)/d(w) for each w in `wrt` and
// returns them in order. `loss` must be a scalar float. A w that the loss
// does not depend on gets a zero constant.
std::vector<Value *> append_gradients(Graph &g, Value *loss,
                                      const std::vector<Value *> &wrt);

// The `autodiff` pass: the graph's first output must be a scalar; the
// gradient with respect to every `param` input is appended as an extra
// output, in input order. Returns true (the graph always changes).
bool run_autodiff(Graph &g);

} // namespace kiln
