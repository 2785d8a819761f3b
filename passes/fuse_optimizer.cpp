// fuse-optimizer: after fuse-elementwise, the weight decay, momentum or Adam
// moments and the update of one parameter are one fused "elementwise" node
// that produces the new parameter and the new state (outputs aliasing a
// param or state input). This pass collects, in node order, every fused
// elementwise node that produces such an aliased output and merges them into
// ONE fused node of kind "multi_tensor": one launch for the whole model, as
// PyTorch's fused=True optimizers are written by hand. A candidate whose
// merge would make a cycle (it depends on an earlier picked candidate,
// directly or through other nodes) is left as it is. Plain elementwise nodes (a
// graph that did not go through fuse-elementwise) are not touched.
//
// CONTRACT for the code generators: a multi_tensor body is the
// concatenation of the merged kernels' bodies: a set of independent
// elementwise chains. Attribute `chains` lists how many results each chain
// has, in result order; the results of one chain share its iteration space
// (their common shape) and the body nodes that compute them; each body
// output's iteration space is its own shape. Every body input of a chain
// broadcasts to the chain's space; inputs used by several chains (the
// learning rate, the step) are one shared operand. Body nodes are
// elementwise ops and scalar fill constants, as in "elementwise" kernels.
// No body node other than a fill constant belongs to two chains. Both
// targets take the chains from output_chains (plan/kernel_plan.h), which
// checks the attribute against the body.
#include "passes/fuse_optimizer.h"

#include "ir/error.h"
#include "ir/fused_kind.h"
#include "passes/fuse_elementwise.h"
#include "passes/rewrite.h"

#include <unordered_map>
#include <unordered_set>

namespace kiln {

namespace {

bool is_elementwise_kernel(const Node &n) {
  return n.body && is_fused(n, FusedKind::elementwise);
}

} // namespace

bool run_fuse_optimizer(Graph &g) {
  std::unordered_set<const Value *> updates;
  for (const GraphOutput &o : g.outputs)
    if (o.alias >= 0 && g.inputs()[o.alias].kind != InputKind::data)
      updates.insert(o.value);
  // Merging the picked kernels into one node makes a cycle exactly when
  // some picked kernel depends on another one, directly (it reads the
  // other's result: one parameter's update reads a value another
  // parameter's update produces) or through other nodes. The node list is
  // topologically ordered, so one forward walk that taints every value
  // depending on a picked kernel finds them: a candidate with a tainted
  // operand is left as it is (and taints its results, as it depends on a
  // picked kernel).
  std::vector<Node *> picked;
  std::unordered_set<const Node *> set;
  std::unordered_set<const Value *> tainted;
  for (auto &np : g.nodes()) {
    Node *n = np.get();
    bool depends = false;
    for (const Value *o : n->operands)
      depends = depends || tainted.count(o);
    bool candidate = false;
    if (!depends && is_elementwise_kernel(*n))
      for (const Value *r : n->results)
        candidate = candidate || updates.count(r);
    if (candidate) {
      set.insert(n);
      picked.push_back(n);
    }
    if (candidate || depends)
      for (const Value *r : n->results)
        tainted.insert(r);
  }
  if (picked.empty())
    return false;

  auto body = std::make_unique<Graph>("multi_tensor");
  std::unordered_map<const Value *, Value *> outer_to_body;
  std::vector<Value *> operands;
  std::vector<Type> types;
  std::vector<int64_t> chains;
  for (Node *k : picked) {
    std::unordered_map<const Value *, Value *> map;
    for (size_t i = 0; i < k->operands.size(); ++i) {
      Value *o = k->operands[i];
      auto it = outer_to_body.find(o);
      if (it == outer_to_body.end()) {
        Value *in = body->add_input(k->body->inputs()[i].value->name, o->type);
        operands.push_back(o);
        it = outer_to_body.emplace(o, in).first;
      }
      map[k->body->inputs()[i].value] = it->second;
    }
    for (auto &bn : k->body->nodes())
      body->copy_node(*bn, map);
    for (const GraphOutput &o : k->body->outputs) {
      body->add_output(map.at(o.value));
      types.push_back(o.value->type);
    }
    chains.push_back(static_cast<int64_t>(k->results.size()));
  }
  Attrs attrs;
  attrs.set("kind", fused_kind_attr(FusedKind::multi_tensor));
  attrs.set("chains", chains);
  Node *m = g.insert_before(picked.back(), Op::Fused, std::move(operands),
                            std::move(types), attrs, std::move(body));
  // Every use of a merged kernel's result moves to the new node's, in one
  // walk over the graph (not one per result).
  std::unordered_map<const Value *, Value *> moved;
  size_t j = 0;
  for (Node *k : picked)
    for (Value *r : k->results) {
      m->results[j]->name = r->name;
      moved[r] = m->results[j++];
    }
  for (auto &np : g.nodes())
    for (Value *&o : np->operands)
      if (auto it = moved.find(o); it != moved.end())
        o = it->second;
  for (GraphOutput &o : g.outputs)
    if (auto it = moved.find(o.value); it != moved.end())
      o.value = it->second;
  g.erase_nodes_if([&](const Node &n) { return set.count(&n) > 0; });
  topo_sort(g);
  number_fused_bodies(g);
  return true;
}

} // namespace kiln
