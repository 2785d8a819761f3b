// cse: one walk over the nodes in order, keeping a table from a node's key
// (op, operands, attributes, result types) to the first node with that key;
// a later node with the same key has its results replaced by the first's and
// is erased. Commutative ops key on their operands in a fixed order, so
// add(a, b) and add(b, a) match. Random ops are never merged (two draws are
// two draws), nor fused nodes (their bodies are not compared). Operands are
// keyed by identity, so after a replacement the users of the replaced value
// match too in the same walk.
#include "passes/cse.h"

#include <cstdint>
#include <string>
#include <string_view>

#include <unordered_map>
#include <unordered_set>

namespace kiln {

namespace {

// The key as raw bytes, every field fixed-size or length-prefixed, so that
// two keys are equal exactly when op, operands, attributes and result types
// are. Built without formatting: cse is one of the passes a 100k-node graph
// spends its time in.
template <typename T> void put(std::string &k, T v) {
  k.append(reinterpret_cast<const char *>(&v), sizeof v);
}

void put_str(std::string &k, std::string_view s) {
  put(k, static_cast<uint32_t>(s.size()));
  k.append(s);
}

// Operands are keyed by Value::id (unique within the graph): equal ids are
// the same value.
std::string key(const Node &n) {
  int ops[2] = {0, 0};
  std::string k;
  put(k, static_cast<int32_t>(n.op));
  put(k, static_cast<uint32_t>(n.operands.size()));
  bool swap = n.info().has(kCommutative) && n.operands.size() == 2;
  if (swap) {
    ops[0] = n.operands[0]->id;
    ops[1] = n.operands[1]->id;
    if (ops[1] < ops[0])
      std::swap(ops[0], ops[1]);
    put(k, ops[0]);
    put(k, ops[1]);
  } else {
    for (const Value *o : n.operands)
      put(k, o->id);
  }
  put(k, static_cast<uint32_t>(n.attrs.items().size()));
  for (auto &[name, v] : n.attrs.items()) {
    put_str(k, name);
    put_str(k, attr_str(v));
  }
  put(k, static_cast<uint32_t>(n.results.size()));
  for (const Value *r : n.results) {
    put(k, static_cast<int32_t>(r->type.dtype));
    put(k, static_cast<uint32_t>(r->type.shape.size()));
    for (int64_t d : r->type.shape)
      put(k, d);
  }
  return k;
}

} // namespace

bool run_cse(Graph &g) {
  std::unordered_map<std::string, Node *> seen;
  seen.reserve(g.nodes().size());
  std::unordered_map<Value *, Value *> replace;
  std::unordered_set<const Node *> erased;
  for (auto &np : g.nodes()) {
    Node &n = *np;
    for (Value *&o : n.operands)
      if (auto it = replace.find(o); it != replace.end())
        o = it->second;
    if (n.op == Op::Fused || n.info().has(kRandom) || n.body)
      continue;
    auto [it, fresh] = seen.emplace(key(n), &n);
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
