#include "passes/rewrite.h"

#include "ir/error.h"
#include "ir/host_tensor.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <queue>
#include <unordered_map>
#include <unordered_set>

namespace kiln {

std::optional<double> const_value(const Value *v) {
  if (!v->def || v->def->op != Op::Constant)
    return std::nullopt;
  // The value the elements hold: an i32 constant written 0.5 is 0, an f32
  // constant written -1e308 is -inf (what the interpreter computes with).
  return round_to(v->type.dtype, v->def->attrs.get_float("value"));
}

bool is_const(const Value *v, double x) {
  auto c = const_value(v);
  return c && *c == x;
}

namespace {

// One past the largest Value::id in g's top level (inputs and node
// results), for tables indexed by id instead of hashed by pointer.
size_t id_bound(const Graph &g) {
  int m = -1;
  for (const GraphInput &in : g.inputs())
    m = std::max(m, in.value->id);
  for (const auto &n : g.nodes())
    for (const Value *r : n->results)
      m = std::max(m, r->id);
  return static_cast<size_t>(m + 1);
}

} // namespace

void topo_sort(Graph &g) {
  const auto &nodes = g.nodes();
  // Position of each value's defining node, by value id (-1: an input).
  std::vector<int64_t> def_pos(id_bound(g), -1);
  for (size_t i = 0; i < nodes.size(); ++i)
    for (const Value *r : nodes[i]->results)
      def_pos[static_cast<size_t>(r->id)] = static_cast<int64_t>(i);
  std::vector<int> pending(nodes.size(), 0);
  std::vector<std::vector<size_t>> users(nodes.size());
  std::vector<size_t> last_user(nodes.size(), SIZE_MAX); // dedupes edges
  for (size_t i = 0; i < nodes.size(); ++i)
    for (const Value *o : nodes[i]->operands) {
      if (!o->def)
        continue;
      int64_t j = static_cast<size_t>(o->id) < def_pos.size()
                      ? def_pos[static_cast<size_t>(o->id)]
                      : -1;
      if (j < 0 ||
          nodes[static_cast<size_t>(j)]->results.size() <=
              static_cast<size_t>(o->index) ||
          nodes[static_cast<size_t>(j)]
                  ->results[static_cast<size_t>(o->index)] != o)
        fail("graph @{}: an operand of node {} is defined by no node of the "
             "graph",
             g.name, i);
      size_t d = static_cast<size_t>(j);
      if (last_user[d] == i)
        continue;
      last_user[d] = i;
      ++pending[i];
      users[d].push_back(i);
    }
  std::priority_queue<size_t, std::vector<size_t>, std::greater<>> ready;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (!pending[i])
      ready.push(i);
  std::vector<Node *> order;
  order.reserve(nodes.size());
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
  // Live values by id: the walk is linear without hashing every value.
  std::vector<char> live(id_bound(g), 0);
  auto mark = [&](const Value *v) {
    if (static_cast<size_t>(v->id) < live.size())
      live[static_cast<size_t>(v->id)] = 1;
  };
  auto is_live = [&](const Value *v) {
    return static_cast<size_t>(v->id) < live.size() &&
           live[static_cast<size_t>(v->id)];
  };
  for (const GraphOutput &o : g.outputs)
    mark(o.value);
  std::unordered_set<const Node *> dead;
  const auto &nodes = g.nodes();
  for (size_t i = nodes.size(); i-- > 0;) {
    const Node &n = *nodes[i];
    bool used = false;
    for (const Value *r : n.results)
      used = used || is_live(r);
    if (!used) {
      dead.insert(&n);
      continue;
    }
    for (const Value *o : n.operands)
      mark(o);
  }
  bool changed = !dead.empty();
  if (changed)
    g.erase_nodes_if([&](const Node &n) { return dead.count(&n) > 0; });
  for (const auto &n : g.nodes())
    if (n->body)
      changed = remove_dead_nodes(*n->body) || changed;
  return changed;
}

} // namespace kiln
