// canonicalize: local rewrites to a fixed point. Each node, in order, is
// offered to the rules below; a rule returns the value that replaces the
// node's result (an existing value, or a new node inserted just before it),
// all uses move to it and the node is erased. Nodes made dead are left to
// `dce`. The rules never change a value's type: an identity whose operand
// would have to be broadcast (x[3] + 0[4,3]) is left alone.
//
// Rules:
//  - x*1, 1*x, x/1, x+0, 0+x, x-0 -> x; 0-x -> neg(x); neg(neg(x)) -> x.
//    Gradient zeroing and accumulation vanish this way when a step has one
//    backward: add(zeros, g) -> g.
//  - x-x -> 0 for every dtype. For floats this is what torch-style
//    compilers do, and it differs from IEEE arithmetic only when x is inf or
//    NaN (inf-inf = NaN, folded to 0).
//  - where(c, a, b) with a constant c -> a or b.
//  - transpose(transpose(x, p), q) -> transpose(x, p∘q); identity perm -> x.
//  - transpose(matmul(a, b)) -> matmul(transpose(b), transpose(a)) when the
//    transpose swaps the last two axes only, both operands have rank >= 2
//    and the product has no other use. The gradient of x @ W^T (Linear's
//    [out, in] weight) is transpose(x^T dy); this makes it dy^T x, whose
//    transposes the execution plan folds into the GEMM as flags, so no
//    transpose kernel is left.
//  - reshape(reshape(x)) -> reshape(x); reshape to x's own shape -> x.
//  - broadcast_to(broadcast_to(x)) -> broadcast_to(x); to x's shape -> x.
//  - sum(sum(x)) -> one sum over the union of the axes, mean(sum(x)) ->
//    that sum divided by the count (both without keepdims, or both with
//    it; the inner sum used once). The loss -mean(sum(onehot * logp, 1))
//    becomes one reduction and a scalar epilogue.
//  - sum(k * x) -> k * sum(x) and the same for mean, when k is a finite
//    fill constant and x has the product's type: the scale moves to the
//    smaller side of the reduction. (With k inf or NaN the two differ on
//    an empty x or on zeros in x, so the rule is left out.)
//  - sum(one_hot(y), class axis) -> (0 <= y < C) as the one_hot's dtype
//    (a row of one_hot(y) sums to 1 exactly when its label is in range).
//    Cross-entropy's backward sums its scaled one-hot rows; this leaves it
//    an elementwise function of the labels.
//  - constant folding: an op whose operands are all fill constants becomes
//    a fill constant when its result is uniform (always for elementwise
//    ops, reshape, transpose, broadcast_to; checked by running the
//    reference implementation for the others). random_uniform and fused
//    nodes are never folded. Values are computed exactly as the reference
//    interpreter does (double, rounded to the result dtype).
#include "passes/canonicalize.h"

#include "ir/host_tensor.h"
#include "ir/infer.h"
#include "ir/scalar_expr.h"
#include "passes/rewrite.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

namespace kiln {

namespace {

class Canonicalizer {
public:
  explicit Canonicalizer(Graph &g) : g_(g) {}

  // One sweep over the nodes; true when something was rewritten. The sweep
  // is linear in the graph: a replaced result is recorded (not searched
  // for in every node), each node's operands are brought up to date when
  // the walk reaches it (its operands are defined before it), new nodes are
  // appended and put in place by one reordering at the end, and use counts
  // are kept as the replacements move uses. The result is the same as
  // replacing every use at once and inserting each new node just before
  // the node it rewrites.
  bool sweep() {
    std::vector<Node *> nodes;
    for (auto &n : g_.nodes())
      nodes.push_back(n.get());
    uses_.clear();
    counted_ = false; // counted when a rule first asks (see uses)
    replaced_.clear();
    before_.clear();
    std::unordered_set<const Node *> erased;
    for (Node *n : nodes) {
      for (Value *&o : n->operands)
        o = current(o);
      if (n->results.size() != 1)
        continue;
      node_ = n;
      Value *r = rewrite(*n);
      if (!r || r == n->result())
        continue;
      r = current(r);
      replaced_[n->result()] = r;
      if (counted_) {
        int &from = uses_[n->result()];
        uses_[r] += from;
        from = 0;
      }
      erased.insert(n);
    }
    for (GraphOutput &o : g_.outputs)
      o.value = current(o.value);
    if (!before_.empty()) {
      std::vector<Node *> order;
      order.reserve(g_.nodes().size());
      for (Node *n : nodes) {
        if (auto it = before_.find(n); it != before_.end())
          order.insert(order.end(), it->second.begin(), it->second.end());
        order.push_back(n);
      }
      g_.reorder(order);
    }
    g_.erase_nodes_if([&](const Node &n) { return erased.count(&n) > 0; });
    return !erased.empty();
  }

private:
  // What `v` stands for after this sweep's replacements so far.
  Value *current(Value *v) const {
    if (replaced_.empty())
      return v;
    for (auto it = replaced_.find(v); it != replaced_.end();
         it = replaced_.find(v))
      v = it->second;
    return v;
  }

  // A new node computing `op`, placed just before the node being rewritten.
  Value *make(Op op, std::vector<Value *> operands, Type type,
              Attrs attrs = {}) {
    if (counted_)
      for (const Value *o : operands)
        ++uses_[o];
    Node *m =
        g_.append(op, std::move(operands), {std::move(type)}, std::move(attrs));
    before_[node_].push_back(m);
    return m->result();
  }
  Value *fill(double v, const Type &t) {
    return make(Op::Constant, {}, t, {{"value", v}});
  }
  // `x` when it already has the result's type, else nullptr.
  static Value *same(const Node &n, Value *x) {
    return x->type == n.result()->type ? x : nullptr;
  }

  Value *rewrite(const Node &n) {
    if (Value *c = fold(n))
      return c;
    Value *a = n.operands.size() > 0 ? n.operands[0] : nullptr;
    Value *b = n.operands.size() > 1 ? n.operands[1] : nullptr;
    switch (n.op) {
    case Op::Mul:
      if (is_const(b, 1))
        return same(n, a);
      if (is_const(a, 1))
        return same(n, b);
      return nullptr;
    case Op::Div:
      return is_const(b, 1) ? same(n, a) : nullptr;
    case Op::Add:
      if (is_const(b, 0))
        return same(n, a);
      if (is_const(a, 0))
        return same(n, b);
      return nullptr;
    case Op::Sub:
      if (is_const(b, 0))
        return same(n, a);
      if (a == b)
        return fill(0, n.result()->type);
      if (is_const(a, 0) && b->type == n.result()->type)
        return make(Op::Neg, {b}, b->type);
      return nullptr;
    case Op::Neg:
      if (a->def && a->def->op == Op::Neg)
        return a->def->operands[0];
      return nullptr;
    case Op::Where:
      if (auto c = const_value(a))
        return same(n, *c != 0 ? n.operands[1] : n.operands[2]);
      return nullptr;
    case Op::Transpose:
      return transpose(n);
    case Op::Reshape:
      if (a->type.shape == n.result()->type.shape)
        return a;
      if (a->def && a->def->op == Op::Reshape)
        return make(Op::Reshape, {a->def->operands[0]}, n.result()->type,
                    n.attrs);
      return nullptr;
    case Op::BroadcastTo:
      if (a->type.shape == n.result()->type.shape)
        return a;
      if (a->def && a->def->op == Op::BroadcastTo)
        return make(Op::BroadcastTo, {a->def->operands[0]}, n.result()->type,
                    n.attrs);
      return nullptr;
    case Op::Sum:
    case Op::Mean:
      if (Value *v = sum_of_sum(n))
        return v;
      if (Value *v = sum_of_scaled(n))
        return v;
      return sum_of_one_hot(n);
    default:
      return nullptr;
    }
  }

  Value *transpose(const Node &n) {
    Value *x = n.operands[0];
    std::vector<int64_t> perm = n.attrs.get_ints("perm");
    if (Value *v = transpose_of_matmul(n, perm))
      return v;
    if (x->def && x->def->op == Op::Transpose) {
      const auto &inner = x->def->attrs.get_ints("perm");
      std::vector<int64_t> composed(perm.size());
      for (size_t i = 0; i < perm.size(); ++i)
        composed[i] = inner[perm[i]];
      x = x->def->operands[0];
      perm = composed;
    }
    bool identity = true;
    for (size_t i = 0; i < perm.size(); ++i)
      identity = identity && perm[i] == static_cast<int64_t>(i);
    if (identity)
      return x;
    if (x == n.operands[0])
      return nullptr;
    return make(Op::Transpose, {x}, n.result()->type,
                {{"perm", std::move(perm)}});
  }

  // True when `perm` swaps the last two axes and keeps the others.
  static bool swaps_last_two(const std::vector<int64_t> &perm) {
    size_t r = perm.size();
    if (r < 2)
      return false;
    for (size_t i = 0; i + 2 < r; ++i)
      if (perm[i] != static_cast<int64_t>(i))
        return false;
    return perm[r - 2] == static_cast<int64_t>(r - 1) &&
           perm[r - 1] == static_cast<int64_t>(r - 2);
  }

  // The transposed operand of a matmul: [..., m, k] -> [..., k, m].
  Value *swap_last_two(Value *v) {
    std::vector<int64_t> perm(v->type.shape.size());
    std::iota(perm.begin(), perm.end(), int64_t{0});
    std::swap(perm[perm.size() - 2], perm[perm.size() - 1]);
    Shape shape = v->type.shape;
    std::swap(shape[shape.size() - 2], shape[shape.size() - 1]);
    return make(Op::Transpose, {v}, {v->type.dtype, shape},
                {{"perm", std::move(perm)}});
  }

  // transpose(a @ b) -> b^T @ a^T (see the rules at the top).
  Value *transpose_of_matmul(const Node &n, const std::vector<int64_t> &perm) {
    Value *p = n.operands[0];
    if (!p->def || p->def->op != Op::Matmul || !swaps_last_two(perm) ||
        uses(p) != 1)
      return nullptr;
    Value *a = p->def->operands[0], *b = p->def->operands[1];
    if (a->type.rank() < 2 || b->type.rank() < 2)
      return nullptr;
    Value *m = make(Op::Matmul, {swap_last_two(b), swap_last_two(a)},
                    n.result()->type);
    m->name = n.result()->name; // "grad_fc1.weight" stays readable
    return m;
  }

  // Uses of `v` (node operands and graph outputs) in the graph as it
  // stands during the sweep. Counted on the first call of a sweep (most
  // sweeps never ask), then kept up to date by make and the replacements.
  int uses(const Value *v) {
    if (!counted_) {
      for (auto &m : g_.nodes())
        for (Value *o : m->operands)
          ++uses_[current(o)];
      for (const GraphOutput &o : g_.outputs)
        ++uses_[current(o.value)];
      counted_ = true;
    }
    auto it = uses_.find(v);
    return it == uses_.end() ? 0 : it->second;
  }

  // sum(sum(x, A), B) -> sum(x, A ∪ B') where B' are B's axes in x's
  // numbering, and mean(sum(x, A), B) -> div(sum(x, A ∪ B'), count(B));
  // only when both or neither keep dims, and the inner sum has no other
  // use (else x would be read twice).
  Value *sum_of_sum(const Node &n) {
    Value *y = n.operands[0];
    if (!y->def || y->def->op != Op::Sum || uses(y) != 1)
      return nullptr;
    const Node &inner = *y->def;
    bool keep = attr_bool(n, "keepdims");
    if (keep != attr_bool(inner, "keepdims"))
      return nullptr;
    Value *x = inner.operands[0];
    std::vector<int> ia = reduction_axes(inner.attrs, x->type.rank());
    std::vector<int> oa = reduction_axes(n.attrs, y->type.rank());
    std::vector<int> kept_axes; // axes of x that survive the inner sum
    for (int i = 0; i < x->type.rank(); ++i)
      if (keep || std::find(ia.begin(), ia.end(), i) == ia.end())
        kept_axes.push_back(i);
    std::vector<int64_t> all(ia.begin(), ia.end());
    for (int a : oa)
      all.push_back(kept_axes.at(a));
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    Attrs attrs;
    attrs.set("axes", all);
    if (keep)
      attrs.set("keepdims", true);
    const Type &rt = n.result()->type;
    Value *s = make(Op::Sum, {x}, rt, attrs);
    if (n.op == Op::Sum)
      return s;
    // The count of the outer mean is the product of y's reduced extents
    // (not numel(y) / numel(result), which divides by zero when a kept axis
    // is empty).
    int64_t count = 1;
    for (int a : oa)
      count *= y->type.shape.at(static_cast<size_t>(a));
    return make(Op::Div, {s, fill(static_cast<double>(count), {rt.dtype, {}})},
                rt);
  }

  // sum(k * x) -> k * sum(x) (also mean) for a fill constant k.
  Value *sum_of_scaled(const Node &n) {
    Value *y = n.operands[0];
    if (!y->def || y->def->op != Op::Mul)
      return nullptr;
    Value *a = y->def->operands[0], *b = y->def->operands[1];
    auto k = const_value(a);
    Value *x = b;
    if (!k) {
      k = const_value(b);
      x = a;
    }
    // Only a finite k: k * sum(x) differs from sum(k * x) when k is inf or
    // NaN and x is empty or holds zeros (sum(inf * []) = 0, inf * 0 = NaN).
    // Only floats: integer products saturate element by element, so for
    // integers the two differ whenever one of them overflows.
    if (!k || !std::isfinite(*k) || x->type != y->type ||
        !is_float(y->type.dtype))
      return nullptr;
    const Type &rt = n.result()->type;
    Value *s = make(n.op, {x}, rt, n.attrs);
    return make(Op::Mul, {fill(*k, {rt.dtype, {}}), s}, rt);
  }

  // sum(one_hot(y), class axis) -> cast(y >= 0) * cast(y < C).
  Value *sum_of_one_hot(const Node &n) {
    Value *h = n.operands[0];
    if (n.op != Op::Sum || !h->def || h->def->op != Op::OneHot)
      return nullptr;
    int rank = h->type.rank();
    std::vector<int> axes = reduction_axes(n.attrs, rank);
    if (axes != std::vector<int>{rank - 1})
      return nullptr;
    Value *y = h->def->operands[0];
    const Type &rt = n.result()->type;
    if (rt.shape != y->type.shape)
      y = make(
          Op::Reshape, {y}, {y->type.dtype, rt.shape},
          {{"shape", std::vector<int64_t>(rt.shape.begin(), rt.shape.end())}});
    DType ld = y->type.dtype;
    double c = static_cast<double>(h->def->attrs.get_int("num_classes"));
    Type bt{DType::boolean, rt.shape};
    Attrs to{{"dtype", std::string(dtype_name(rt.dtype))}};
    Value *lo =
        make(Op::Cast, {make(Op::Ge, {y, fill(0, {ld, {}})}, bt)}, rt, to);
    Value *hi =
        make(Op::Cast, {make(Op::Lt, {y, fill(c, {ld, {}})}, bt)}, rt, to);
    return make(Op::Mul, {lo, hi}, rt);
  }

  // Constant folding.
  Value *fold(const Node &n) {
    const OpInfo &info = n.info();
    if (n.op == Op::Constant || n.op == Op::Fused || info.has(kRandom) ||
        n.operands.empty())
      return nullptr;
    std::vector<double> vals;
    for (const Value *o : n.operands) {
      auto c = const_value(o);
      if (!c)
        return nullptr;
      vals.push_back(*c);
    }
    const Type &rt = n.result()->type;
    if (info.has(kElementwise)) {
      double v = eval_scalar(scalar_expr(n), vals.data());
      return fill(round_to(rt.dtype, v), rt);
    }
    if (n.op == Op::Reshape || n.op == Op::Transpose || n.op == Op::BroadcastTo)
      return fill(vals[0], rt);
    // Anything else: run the reference implementation on small tensors.
    int64_t total = rt.numel();
    for (const Value *o : n.operands)
      total += o->type.numel();
    if (total > (int64_t{1} << 20))
      return nullptr;
    std::vector<HostTensor> in;
    for (size_t i = 0; i < n.operands.size(); ++i)
      in.emplace_back(
          n.operands[i]->type,
          std::vector<double>(n.operands[i]->type.numel(), vals[i]));
    std::vector<const HostTensor *> ptrs;
    for (auto &t : in)
      ptrs.push_back(&t);
    std::vector<HostTensor> out;
    info.eval(n, ptrs, out);
    if (out.size() != 1 || out[0].data.empty())
      return nullptr;
    double v = round_to(rt.dtype, out[0].data[0]);
    for (double x : out[0].data)
      if (round_to(rt.dtype, x) != v)
        return nullptr;
    return fill(v, rt);
  }

  Graph &g_;
  const Node *node_ = nullptr;
  std::unordered_map<const Value *, int> uses_;
  bool counted_ = false;
  std::unordered_map<Value *, Value *> replaced_;
  std::unordered_map<const Node *, std::vector<Node *>> before_;
};

} // namespace

bool run_canonicalize(Graph &g) {
  Canonicalizer c(g);
  bool changed = false;
  for (int i = 0; i < 32 && c.sweep(); ++i)
    changed = true;
  return changed;
}

} // namespace kiln
