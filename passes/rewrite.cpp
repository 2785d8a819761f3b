#include "passes/rewrite.h"

#include "ir/error.h"

#include <queue>
#include <unordered_map>
#include <unordered_set>

namespace kiln {

std::optional<double> const_value(const Value *v) {
  if (!v->def || v->def->op != Op::Constant)
    return std::nullopt;
  return v->def->attrs.get_float("value");
}

bool is_const(const Value *v, double x) {
  auto c = const_value(v);
  return c && *c == x;
}

void topo_sort(Graph &g) {
  const auto &nodes = g.nodes();
  std::unordered_map<const Node *, size_t> pos;
  for (size_t i = 0; i < nodes.size(); ++i)
    pos[nodes[i].get()] = i;
  std::vector<int> pending(nodes.size(), 0);
  std::vector<std::vector<size_t>> users(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    std::unordered_set<const Node *> seen;
    for (const Value *o : nodes[i]->operands)
      if (o->def && seen.insert(o->def).second) {
        ++pending[i];
        users[pos.at(o->def)].push_back(i);
      }
  }
  std::priority_queue<size_t, std::vector<size_t>, std::greater<>> ready;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (!pending[i])
      ready.push(i);
  std::vector<Node *> order;
  while (!ready.empty()) {
    size_t i = ready.top();
    ready.pop();
    order.push_back(nodes[i].get());
    for (size_t u : users[i])
      if (--pending[u] == 0)
        ready.push(u);
  }
  if (order.size() != nodes.size())
    fail("graph @{} has a cycle", g.name);
  g.reorder(order);
}

bool remove_dead_nodes(Graph &g) {
  std::unordered_set<const Value *> live;
  for (const GraphOutput &o : g.outputs)
    live.insert(o.value);
  std::unordered_set<const Node *> dead;
  const auto &nodes = g.nodes();
  for (size_t i = nodes.size(); i-- > 0;) {
    const Node &n = *nodes[i];
    bool used = false;
    for (const Value *r : n.results)
      used = used || live.count(r);
    if (!used) {
      dead.insert(&n);
      continue;
    }
    for (const Value *o : n.operands)
      live.insert(o);
  }
  bool changed = !dead.empty();
  g.erase_nodes_if([&](const Node &n) { return dead.count(&n) > 0; });
  for (const auto &n : g.nodes())
    if (n->body)
      changed = remove_dead_nodes(*n->body) || changed;
  return changed;
}

} // namespace kiln
