// Checks the contract between the fusion passes and the code generators
// (passes/fuse_elementwise.cpp, passes/fuse_optimizer.cpp): returns "" when
// every fused node of g keeps it, else what is wrong.
#pragma once

#include "ir/graph.h"

#include <fmt/format.h>

#include <string>
#include <unordered_set>

namespace kiln::testing {

inline bool is_body_elementwise(const Node &n) {
  if (n.info().has(kElementwise) || n.op == Op::Iota)
    return true;
  return n.op == Op::Constant && n.result()->type.rank() == 0;
}

inline std::string check_kernel_contract(const Graph &g) {
  int index = 0;
  for (auto &np : g.nodes()) {
    const Node &n = *np;
    ++index;
    if (n.op != Op::Fused)
      continue;
    std::string at =
        fmt::format("node {} ({})", index - 1, n.body ? n.body->name : "?");
    const std::string &kind = n.attrs.get_str("kind");
    const Graph &body = *n.body;
    if (kind == "elementwise") {
      const Shape &space = n.result()->type.shape;
      for (const Value *r : n.results)
        if (r->type.shape != space)
          return at + ": results of different shapes";
      for (const GraphInput &in : body.inputs())
        if (!broadcasts_to(in.value->type.shape, space))
          return at + ": input " + in.value->type.str() +
                 " does not broadcast to " + shape_str(space);
      for (auto &b : body.nodes())
        if (!is_body_elementwise(*b))
          return at + ": body holds " + std::string(b->info().name);
    } else if (kind == "reduction") {
      // Prologue, ONE reduction, epilogue (after sum/mean/amax only, on the
      // reduced value and scalar constants); output 0 reduced, outputs 1..
      // prologue values of the space's shape.
      const Node *red = nullptr;
      std::unordered_set<const Value *> prologue, epilogue;
      for (auto &b : body.nodes()) {
        if (b->info().has(kReduction)) {
          if (red)
            return at + ": more than one reduction";
          red = b.get();
          epilogue.insert(b->result());
          continue;
        }
        if (!is_body_elementwise(*b))
          return at + ": body holds " + std::string(b->info().name);
        if (!red) {
          prologue.insert(b->result());
          continue;
        }
        bool plain =
            red->op == Op::Sum || red->op == Op::Mean || red->op == Op::Amax;
        if (!plain)
          return at + ": an epilogue after " + std::string(red->info().name);
        for (const Value *o : b->operands)
          if (!epilogue.count(o) &&
              !(o->def && o->def->op == Op::Constant && o->type.rank() == 0))
            return at + ": epilogue reads a value from before the reduction";
        epilogue.insert(b->result());
      }
      if (!red || body.outputs.empty())
        return at + ": a reduction kernel needs its reduction and an output";
      const Shape &space = red->operands[0]->type.shape;
      for (const GraphInput &in : body.inputs())
        if (!broadcasts_to(in.value->type.shape, space))
          return at + ": input does not broadcast to the reduction space";
      if (!epilogue.count(body.outputs[0].value) ||
          body.outputs[0].value->type.shape != red->result()->type.shape)
        return at + ": output 0 must be the reduced value";
      for (size_t i = 1; i < body.outputs.size(); ++i) {
        const Value *o = body.outputs[i].value;
        if (!prologue.count(o) || o->type.shape != space)
          return at + ": extra output " + std::to_string(i) +
                 " is not a prologue value over the space";
        if (red->op != Op::Sum && red->op != Op::Mean && red->op != Op::Amax)
          return at + ": extra outputs after " + std::string(red->info().name);
      }
    } else if (kind == "multi_tensor") {
      for (auto &b : body.nodes())
        if (!is_body_elementwise(*b))
          return at + ": body holds " + std::string(b->info().name);
      const auto &chains = n.attrs.get_ints("chains");
      size_t r = 0;
      for (int64_t c : chains) {
        const Shape &space = n.results.at(r)->type.shape;
        for (int64_t j = 0; j < c; ++j, ++r)
          if (n.results.at(r)->type.shape != space)
            return at + ": a chain's results differ in shape";
      }
      if (r != n.results.size())
        return at + ": chains do not cover the results";
    } else {
      return at + ": unknown kind " + kind;
    }
  }
  return "";
}

} // namespace kiln::testing
