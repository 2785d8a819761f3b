#include "ir/reduction_body.h"

#include "ir/error.h"

#include <unordered_map>

namespace kiln {

namespace {

bool is_body_op(const Node &n) {
  return n.info().has(kElementwise) || n.op == Op::Constant || n.op == Op::Iota;
}

bool is_scalar_constant(const Value *v) {
  return v->def && v->def->op == Op::Constant && v->type.numel() == 1;
}

// Marks the nodes `v` depends on, stopping at nodes already marked.
void mark_cone(const Graph &body, const Value *v,
               const std::unordered_map<const Value *, int> &idx,
               std::vector<bool> &mark) {
  auto it = idx.find(v);
  if (it == idx.end() || mark[it->second])
    return;
  mark[it->second] = true;
  for (const Value *o : body.nodes()[it->second]->operands)
    mark_cone(body, o, idx, mark);
}

} // namespace

ReductionBody split_reduction_body(const Graph &body) {
  const auto &nodes = body.nodes();
  size_t nn = nodes.size();
  ReductionBody rb;
  std::unordered_map<const Value *, int> idx;
  for (size_t i = 0; i < nn; ++i) {
    const Node &b = *nodes[i];
    for (const Value *r : b.results)
      idx[r] = static_cast<int>(i);
    if (b.info().has(kReduction)) {
      if (rb.reduce >= 0)
        fail("fused reduction body holds more than one reduction");
      rb.reduce = static_cast<int>(i);
    } else if (!is_body_op(b)) {
      fail("fused reduction body holds {}, which is not elementwise",
           op_name(b.op));
    }
  }
  if (rb.reduce < 0)
    fail("fused reduction body holds no reduction");
  if (body.outputs.empty())
    fail("fused reduction body has no outputs");
  const Node &red = *nodes[rb.reduce];
  bool plain = red.op == Op::Sum || red.op == Op::Mean || red.op == Op::Amax;
  auto def = [&](const Value *v) {
    auto it = idx.find(v);
    return it == idx.end() ? -1 : it->second;
  };
  // The epilogue: elementwise ops and scalar constants on the reduced value
  // and earlier epilogue values (scalar constants may sit anywhere).
  for (size_t i = rb.reduce + 1; i < nn; ++i) {
    const Node &b = *nodes[i];
    if (!plain)
      fail("fused {} must be the last node of its body", op_name(red.op));
    if (b.op == Op::Iota)
      fail("fused reduction epilogue holds an iota");
    for (const Value *o : b.operands)
      if (def(o) < rb.reduce && !is_scalar_constant(o))
        fail("fused reduction epilogue {} reads {}, not the reduction's "
             "result, an epilogue value or a scalar constant",
             op_name(b.op), o->type.str());
  }
  const Value *out0 = body.outputs[0].value;
  if (def(out0) < rb.reduce)
    fail("fused reduction output 0 must be the reduction's result or an "
         "epilogue value");
  if (out0->type.shape != red.result()->type.shape)
    fail("fused reduction output 0 {} does not have the reduced shape {}",
         out0->type.str(), shape_str(red.result()->type.shape));
  const Shape &xs = red.operands[0]->type.shape;
  for (size_t k = 1; k < body.outputs.size(); ++k) {
    const Value *v = body.outputs[k].value;
    if (!plain)
      fail("fused {} must have the reduction's result as its only output",
           op_name(red.op));
    if (v->type.shape != xs)
      fail("fused reduction output {} {} is not of the reduction input's "
           "shape {}",
           k, v->type.str(), shape_str(xs));
    if (def(v) >= rb.reduce)
      fail("fused reduction output {} must be a prologue value", k);
    rb.extras.push_back(static_cast<int>(k));
  }
  rb.prologue.assign(nn, false);
  mark_cone(body, red.operands[0], idx, rb.prologue);
  for (int k : rb.extras)
    mark_cone(body, body.outputs[k].value, idx, rb.prologue);
  rb.epilogue.assign(nn, false);
  rb.epilogue[rb.reduce] = true; // stops the walk at the reduction
  mark_cone(body, out0, idx, rb.epilogue);
  rb.epilogue[rb.reduce] = false;
  return rb;
}

} // namespace kiln
