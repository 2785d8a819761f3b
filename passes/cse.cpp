// cse: one walk over the nodes in order, keeping a table from a node's key
// (op, operands, attributes, result types) to the first node with that key;
// a later node with the same key has its results replaced by the first's and
// is erased. Commutative ops key on their operands in a fixed order, so
// add(a, b) and add(b, a) match. Random ops are never merged (two draws are
// two draws), nor fused nodes (their bodies are not compared). Operands are
// keyed by identity, so after a replacement the users of the replaced value
// match too in the same walk.
#include "passes/cse.h"

#include <fmt/format.h>

#include <unordered_map>
#include <unordered_set>

namespace kiln {

namespace {

std::string key(const Node &n,
                const std::unordered_map<const Value *, int> &id) {
  std::vector<int> ops;
  for (const Value *o : n.operands)
    ops.push_back(id.at(o));
  if (n.info().has(kCommutative) && ops.size() == 2 && ops[1] < ops[0])
    std::swap(ops[0], ops[1]);
  std::string k = fmt::format("{}({})", n.info().name, fmt::join(ops, ","));
  for (auto &[name, v] : n.attrs.items())
    k += fmt::format(" {}={}", name, attr_str(v));
  for (const Value *r : n.results)
    k += " : " + r->type.str();
  return k;
}

} // namespace

bool run_cse(Graph &g) {
  std::unordered_map<const Value *, int> id;
  for (auto &in : g.inputs())
    id[in.value] = static_cast<int>(id.size());
  std::unordered_map<std::string, Node *> seen;
  std::unordered_map<Value *, Value *> replace;
  std::unordered_set<const Node *> erased;
  for (auto &np : g.nodes()) {
    Node &n = *np;
    for (Value *&o : n.operands)
      if (auto it = replace.find(o); it != replace.end())
        o = it->second;
    for (Value *r : n.results)
      id[r] = static_cast<int>(id.size());
    if (n.op == Op::Fused || n.info().has(kRandom) || n.body)
      continue;
    auto [it, fresh] = seen.emplace(key(n, id), &n);
    if (fresh)
      continue;
    for (size_t i = 0; i < n.results.size(); ++i)
      replace[n.results[i]] = it->second->results[i];
    erased.insert(&n);
  }
  for (GraphOutput &o : g.outputs)
    if (auto it = replace.find(o.value); it != replace.end())
      o.value = it->second;
  g.erase_nodes_if([&](const Node &n) { return erased.count(&n) > 0; });
  return !erased.empty();
}

} // namespace kiln
