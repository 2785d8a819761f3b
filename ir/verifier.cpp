#include "ir/verifier.h"

#include "ir/error.h"
#include "ir/escape.h"
#include "ir/reduction_body.h"

#include <fmt/format.h>

#include <unordered_set>

namespace kiln {

namespace {

std::string describe(const Node &n, int index) {
  return fmt::format("node {} ({})", index, n.info().name);
}

// A constant is one value filled with its numeric `value` (the schema in
// ir/ops.def checks the value).
void verify_constant(const Node &n, const std::string &at) {
  if (n.results.size() != 1)
    fail("verifier: {}: constant has {} results, expected 1", at,
         n.results.size());
}

// The kinds of fused node the code generators know (the contracts in
// passes/fuse_elementwise.cpp and passes/fuse_optimizer.cpp).
// The schema has checked that `kind` is present and a string.
void verify_fused_kind(const Node &n, const std::string &at) {
  const AttrValue *k = n.attrs.find("kind");
  const std::string *kind = std::get_if<std::string>(k);
  if (*kind != "elementwise" && *kind != "reduction" && *kind != "multi_tensor")
    fail("verifier: {}: fused node has kind {} (expected \"elementwise\", "
         "\"reduction\" or \"multi_tensor\")",
         at, escape_for_message(attr_str(*k)));
  if (*kind == "reduction") {
    try {
      split_reduction_body(*n.body);
    } catch (const Error &e) {
      fail("verifier: {}: {}", at, e.what());
    }
    return;
  }
  for (auto &bp : n.body->nodes()) {
    const Node &b = *bp;
    if (!b.info().has(kElementwise) && b.op != Op::Constant && b.op != Op::Iota)
      fail("verifier: {}: fused {} body holds {}, which is not elementwise", at,
           *kind, b.info().name);
  }
}

void verify_graph(const Graph &g, const std::string &where) {
  std::unordered_set<const Value *> defined;
  for (auto &in : g.inputs())
    defined.insert(in.value);
  int index = 0;
  const Node *current = nullptr;
  try {
    for (auto &np : g.nodes()) {
      const Node &n = *np;
      current = &n;
      std::string at = fmt::format("{}{}", where, describe(n, index++));
      const OpInfo &info = n.info();
      if (info.arity >= 0 && static_cast<int>(n.operands.size()) != info.arity)
        fail("verifier: {}: expects {} operands, got {}", at, info.arity,
             n.operands.size());
      for (size_t i = 0; i < n.operands.size(); ++i)
        if (!n.operands[i] || !defined.count(n.operands[i]))
          fail("verifier: {}: operand {} is not defined before use", at, i);
      // Unknown, missing and mistyped attributes, against the op's schema
      // (ir/ops.def); before inference, which reads them.
      if (auto p = find_attr_problem(info, n.attrs))
        fail("verifier: {}: {}", at, p->message);
      std::vector<Type> in, declared;
      for (Value *v : n.operands)
        in.push_back(v->type);
      for (Value *r : n.results)
        declared.push_back(r->type);
      if (n.op == Op::Constant)
        verify_constant(n, at);
      for (Value *r : n.results)
        try {
          (void)r->type.numel();
        } catch (const Error &e) {
          fail("verifier: {}: result {}", at, e.what());
        }
      std::vector<Type> inferred;
      try {
        inferred = info.infer(info.name, in, n.attrs, declared);
      } catch (const Error &e) {
        fail("verifier: {}: {}", at, e.what());
      }
      if (inferred != declared) {
        std::vector<std::string> a, b;
        for (auto &t : declared)
          a.push_back(t.str());
        for (auto &t : inferred)
          b.push_back(t.str());
        fail("verifier: {}: result type {} does not match the inferred {}", at,
             fmt::join(a, ", "), fmt::join(b, ", "));
      }
      if (n.op == Op::Fused) {
        if (!n.body)
          fail("verifier: {}: fused node without a body", at);
        const Graph &body = *n.body;
        if (body.inputs().size() != n.operands.size())
          fail("verifier: {}: body has {} inputs for {} operands", at,
               body.inputs().size(), n.operands.size());
        for (size_t i = 0; i < n.operands.size(); ++i)
          if (body.inputs()[i].value->type != n.operands[i]->type)
            fail("verifier: {}: body input {} is {}, operand is {}", at, i,
                 body.inputs()[i].value->type.str(), n.operands[i]->type.str());
        if (body.outputs.size() != n.results.size())
          fail("verifier: {}: body returns {} values for {} results", at,
               body.outputs.size(), n.results.size());
        for (size_t i = 0; i < n.results.size(); ++i)
          if (body.outputs[i].value->type != n.results[i]->type)
            fail("verifier: {}: body output {} is {}, result is {}", at, i,
                 body.outputs[i].value->type.str(), n.results[i]->type.str());
        verify_graph(body, at + ": ");
        verify_fused_kind(n, at);
      } else if (n.body) {
        fail("verifier: {}: only fused nodes have a body", at);
      }
      for (Value *r : n.results)
        defined.insert(r);
    }
  } catch (const Error &e) {
    // Name the node's source position (or module path) when it has one;
    // a message from a nested body is already located.
    std::string_view msg = e.what();
    if (current && msg.find(": error: ") == std::string_view::npos)
      throw Error(located(*current, msg));
    throw;
  }
  std::unordered_set<int> aliased;
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const GraphOutput &o = g.outputs[i];
    if (!o.value || !defined.count(o.value))
      fail("verifier: {}output {} is not defined", where, i);
    if (o.alias < 0)
      continue;
    if (o.alias >= static_cast<int>(g.inputs().size()))
      fail("verifier: {}output {} aliases input {}, which does not exist",
           where, i, o.alias);
    const GraphInput &in = g.inputs()[o.alias];
    if (in.kind == InputKind::data)
      fail("verifier: {}output {} updates data input %{} in place; only "
           "param and state inputs may be updated",
           where, i, in.value->name);
    if (in.value->type != o.value->type)
      fail("verifier: {}output {} is {} but updates %{} of type {}", where, i,
           o.value->type.str(), in.value->name, in.value->type.str());
    if (!aliased.insert(o.alias).second)
      fail("verifier: {}input %{} is updated in place twice", where,
           in.value->name);
  }
}

} // namespace

void verify(const Graph &g) { verify_graph(g, ""); }

} // namespace kiln
