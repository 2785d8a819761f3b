// Reverse-mode autodiff. The algorithm: mark the nodes on a path from some
// `wrt` value to the loss; seed d(loss)/d(loss) = 1; walk the node list
// backwards and, for each marked node whose results have gradients, call the
// op table's VJP (which emits IR through a Builder appending at the end of
// the graph) and accumulate the operand gradients with `add` when a value has
// several uses. Backward graphs are therefore ordinary graphs, which the
// later passes canonicalize, fuse and compile like the forward.
#include "passes/autodiff.h"

#include "ir/builder.h"
#include "ir/error.h"

#include <unordered_map>
#include <unordered_set>

namespace kiln {

std::vector<Value *> append_gradients(Graph &g, Value *loss,
                                      const std::vector<Value *> &wrt) {
  if (loss->type.rank() != 0 || !is_float(loss->type.dtype))
    fail("autodiff: the loss must be a float scalar, got {}", loss->type.str());
  // Values that depend on some wrt (forward reachability).
  std::unordered_set<const Value *> depends(wrt.begin(), wrt.end());
  // Snapshot the forward nodes: the VJPs append new ones as we go.
  std::vector<Node *> forward;
  for (auto &n : g.nodes())
    forward.push_back(n.get());
  for (Node *n : forward) {
    bool d = false;
    for (Value *o : n->operands)
      d = d || depends.count(o);
    // A fused node has no VJP, but it must still be reached so that the
    // backward walk reports it rather than silently giving zero gradients.
    if (d && (n->info().vjp || n->op == Op::Fused))
      for (Value *r : n->results)
        depends.insert(r);
  }

  Builder b(g);
  std::unordered_map<const Value *, Value *> grad;
  grad[loss] = b.scalar(1.0, loss->type.dtype);
  auto accumulate = [&](Value *v, Value *gv) {
    auto [it, fresh] = grad.emplace(v, gv);
    if (!fresh)
      it->second = b.add(it->second, gv);
  };

  for (auto it = forward.rbegin(); it != forward.rend(); ++it) {
    Node *n = *it;
    std::vector<Value *> gouts;
    bool any = false;
    for (Value *r : n->results) {
      auto gi = grad.find(r);
      gouts.push_back(gi == grad.end() ? nullptr : gi->second);
      any = any || gi != grad.end();
    }
    if (!any)
      continue;
    bool needed = false;
    for (Value *o : n->operands)
      needed = needed || depends.count(o);
    if (!needed)
      continue;
    if (!n->info().vjp) {
      if (n->op == Op::Fused)
        fail_at_node(*n, "autodiff: a fused node has no gradient; run "
                         "autodiff before fusion");
      continue; // comparisons, one_hot, random: no gradient flows
    }
    if (gouts.size() != 1 || !gouts[0])
      fail_at_node(*n, fmt::format("autodiff: {} with several results has "
                                   "no gradient",
                                   n->info().name));
    std::vector<Value *> gins = n->info().vjp(b, *n, gouts);
    for (size_t i = 0; i < n->operands.size(); ++i)
      if (gins.at(i) && depends.count(n->operands[i]))
        accumulate(n->operands[i], gins[i]);
  }

  std::vector<Value *> result;
  for (Value *w : wrt) {
    auto gi = grad.find(w);
    result.push_back(gi != grad.end() ? gi->second : b.constant(0.0, w->type));
  }
  return result;
}

bool run_autodiff(Graph &g) {
  if (g.outputs.empty())
    fail("autodiff: graph @{} has no outputs", g.name);
  Value *loss = g.outputs[0].value;
  std::vector<Value *> params;
  for (auto &in : g.inputs())
    if (in.kind == InputKind::param)
      params.push_back(in.value);
  std::vector<Value *> grads = append_gradients(g, loss, params);
  for (size_t i = 0; i < grads.size(); ++i) {
    grads[i]->name = fmt::format("grad_{}", params[i]->name);
    g.add_output(grads[i]);
  }
  return true;
}

} // namespace kiln
