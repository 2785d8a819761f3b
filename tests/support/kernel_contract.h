// Checks the contract between the fusion passes and the code generators
// (passes/fuse_elementwise.cpp, passes/fuse_optimizer.cpp): returns "" when
// every fused node of g keeps it, else what is wrong.
#pragma once

#include "ir/error.h"
#include "ir/graph.h"
#include "ir/reduction_body.h"

#include <fmt/format.h>

#include <string>

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
      // Prologue, ONE reduction, epilogue; output 0 reduced, outputs 1..
      // prologue values of the space's shape (ir/reduction_body.h).
      try {
        ReductionBody rb = split_reduction_body(body);
        const Shape &space = body.nodes()[rb.reduce]->operands[0]->type.shape;
        for (const GraphInput &in : body.inputs())
          if (!broadcasts_to(in.value->type.shape, space))
            return at + ": input does not broadcast to the reduction space";
        for (auto &b : body.nodes())
          if (b->op == Op::Constant && b->result()->type.rank() != 0)
            return at + ": body holds a non-scalar constant";
      } catch (const Error &e) {
        return at + ": " + e.what();
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
