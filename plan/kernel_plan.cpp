// Loop plans of kernels (see kernel_plan.h) and the target-independent
// helpers of kernel lowering: wrapping standalone ops, structural keys.
#include "plan/kernel_plan.h"

#include "ir/error.h"
#include "ir/fused_kind.h"
#include "ir/infer.h"
#include "ir/interpreter.h"
#include "ir/reduction_body.h"

#include <algorithm>
#include <functional>
#include <numeric>
#include <unordered_map>

namespace kiln {

void collapse_axes(Shape &dims, std::vector<std::vector<int64_t>> &strides,
                   std::vector<int> &cls, bool keep_one) {
  if (cls.empty())
    cls.assign(dims.size(), 0);
  Shape nd;
  std::vector<std::vector<int64_t>> ns(strides.size());
  std::vector<int> nc;
  for (size_t a = 0; a < dims.size(); ++a) {
    if (dims[a] == 1)
      continue; // a size-1 axis contributes no offset and no count
    bool merge = !nd.empty() && nc.back() == cls[a];
    for (size_t k = 0; merge && k < strides.size(); ++k)
      merge = ns[k].back() == strides[k][a] * dims[a];
    if (merge) {
      nd.back() *= dims[a];
      for (size_t k = 0; k < strides.size(); ++k)
        ns[k].back() = strides[k][a];
      continue;
    }
    nd.push_back(dims[a]);
    nc.push_back(cls[a]);
    for (size_t k = 0; k < strides.size(); ++k)
      ns[k].push_back(strides[k][a]);
  }
  if (nd.empty() && keep_one) {
    nd.push_back(1);
    nc.push_back(0);
    for (auto &s : ns)
      s.push_back(0);
  }
  dims = std::move(nd);
  strides = std::move(ns);
  cls = std::move(nc);
}

namespace {

bool is_body_op(const Node &n) {
  return n.info().has(kElementwise) || n.op == Op::Constant || n.op == Op::Iota;
}

// The strides over `space` of an iota read as a virtual input: its value at
// a point is the point's coordinate along the space axis that the iota's
// `axis` lines up with (0 when the iota has size 1 there).
std::vector<int64_t> iota_strides(const Node &n, const Shape &space) {
  const Shape &s = n.result()->type.shape;
  if (!broadcasts_to(s, space))
    fail("fused iota of shape {} does not broadcast to {}", shape_str(s),
         shape_str(space));
  int64_t axis = attr_int(n, "axis");
  if (axis < 0 || axis >= static_cast<int64_t>(s.size()))
    fail("fused iota axis {} is out of range for {}", axis, shape_str(s));
  std::vector<int64_t> st(space.size(), 0);
  if (s[axis] != 1)
    st[space.size() - s.size() + static_cast<size_t>(axis)] = 1;
  return st;
}

// Index of each body value's defining node (or -1 for a body input).
std::unordered_map<const Value *, int> node_index(const Graph &body) {
  std::unordered_map<const Value *, int> idx;
  for (size_t i = 0; i < body.nodes().size(); ++i)
    for (const Value *r : body.nodes()[i]->results)
      idx[r] = static_cast<int>(i);
  return idx;
}

// A fill constant has no operands and the same value everywhere: chains
// may share one (hand-written IR does) without sharing any work, and each
// chain's loop evaluates it.
bool shareable(const Node &n) { return n.op == Op::Constant; }

// The chains of a fused elementwise or multi_tensor node (output_chains)
// and, per chain, the body nodes of its outputs' cones in body order.
struct Cones {
  std::vector<std::vector<int>> chains;
  std::vector<std::vector<int>> nodes;
};

Cones chain_cones(const Node &n) {
  if (n.op != Op::Fused || !n.body)
    fail("output chains are those of a fused node, got {}", op_name(n.op));
  auto kind = fused_kind_of(n);
  if (!kind || *kind == FusedKind::reduction)
    fail("output chains are those of an elementwise or multi_tensor fused "
         "node");
  std::string_view kname = fused_kind_name(*kind);
  const Graph &body = *n.body;
  size_t nout = body.outputs.size();
  if (nout != n.results.size())
    fail("fused node has {} results but its body {} outputs", n.results.size(),
         nout);
  // The walks go per unit: a listed chain, the whole elementwise node, or
  // (no attribute) one output, whose groups a union-find joins.
  std::vector<std::vector<int>> units;
  bool listed = *kind == FusedKind::multi_tensor && n.attrs.has("chains");
  if (*kind == FusedKind::elementwise) {
    if (nout > 0) {
      units.emplace_back(nout);
      std::iota(units[0].begin(), units[0].end(), 0);
    }
  } else if (listed) {
    const std::vector<int64_t> &counts = n.attrs.get_ints("chains");
    int64_t total = 0;
    for (size_t c = 0; c < counts.size(); ++c) {
      if (counts[c] < 1 || counts[c] > static_cast<int64_t>(nout))
        fail("fused {} chain {} lists {} results; a chain has 1 to {}", kname,
             c, counts[c], nout);
      total += counts[c];
    }
    if (total != static_cast<int64_t>(nout))
      fail("fused {} chains list {} results but the node has {}", kname, total,
           nout);
    int next = 0;
    for (int64_t c : counts) {
      units.emplace_back(static_cast<size_t>(c));
      std::iota(units.back().begin(), units.back().end(), next);
      next += static_cast<int>(c);
    }
  } else {
    for (size_t o = 0; o < nout; ++o)
      units.push_back({static_cast<int>(o)});
  }
  // Union-find over units, for the fallback; the smaller index is the root,
  // so groups come out in order of their first output.
  std::vector<int> group(units.size());
  std::iota(group.begin(), group.end(), 0);
  auto find = [&](int x) {
    while (group[x] != x)
      x = group[x] = group[group[x]];
    return x;
  };
  // Each node is visited once: a walk stops at a node an earlier walk
  // reached (and, without the attribute, joins that walk's group, whose
  // cone already holds everything below it), so this is linear in the
  // body, where comparing every pair of cones was O(outputs^2 x nodes)
  // (minutes on a 128-layer model's multi_tensor update). Shared constants
  // are leaves, noted once per unit that reads them.
  auto idx = node_index(body);
  size_t nn = body.nodes().size();
  std::vector<int> owner(nn, -1); // the unit whose walk reached the node
  std::vector<int> last(nn, -1);  // constants: the last unit noted
  std::vector<std::pair<int, int>> leaf_uses; // (constant node, unit)
  std::vector<int> stack;
  for (size_t u = 0; u < units.size(); ++u) {
    int ui = static_cast<int>(u);
    auto visit = [&](const Value *v) {
      auto it = idx.find(v);
      if (it == idx.end())
        return; // a body input
      int k = it->second;
      const Node &bn = *body.nodes()[k];
      if (shareable(bn)) {
        if (last[k] != ui) {
          last[k] = ui;
          leaf_uses.emplace_back(k, ui);
        }
        return;
      }
      if (owner[k] < 0) {
        owner[k] = ui;
        stack.push_back(k);
        return;
      }
      if (owner[k] == ui)
        return;
      if (listed)
        fail("fused {} chains {} and {} share body node {} ({})", kname,
             owner[k], ui, k, op_name(bn.op));
      int a = find(owner[k]), b = find(ui);
      if (a != b)
        group[std::max(a, b)] = std::min(a, b);
    };
    for (int o : units[u]) {
      visit(body.outputs[o].value);
      while (!stack.empty()) {
        int k = stack.back();
        stack.pop_back();
        for (const Value *v : body.nodes()[k]->operands)
          visit(v);
      }
    }
  }
  // Units to chains.
  Cones c;
  std::vector<int> chain_of(units.size(), -1);
  for (size_t u = 0; u < units.size(); ++u) {
    int r = find(static_cast<int>(u));
    if (chain_of[r] < 0) {
      chain_of[r] = static_cast<int>(c.chains.size());
      c.chains.emplace_back();
    }
    chain_of[u] = chain_of[r];
    for (int o : units[u])
      c.chains[chain_of[u]].push_back(o);
  }
  for (auto &ch : c.chains) // joined outputs, in order
    std::sort(ch.begin(), ch.end());
  for (size_t ci = 0; ci < c.chains.size(); ++ci) {
    const Shape &space = n.results[c.chains[ci][0]]->type.shape;
    for (int o : c.chains[ci])
      if (n.results[o]->type.shape != space)
        fail("fused {} chain {} mixes result shapes {} and {}", kname, ci,
             shape_str(space), shape_str(n.results[o]->type.shape));
  }
  // Per chain, its nodes in body order.
  c.nodes.resize(c.chains.size());
  std::vector<std::vector<int>> leaf_chains(nn);
  for (auto [k, u] : leaf_uses)
    leaf_chains[k].push_back(chain_of[u]);
  for (size_t k = 0; k < nn; ++k) {
    int ki = static_cast<int>(k);
    if (owner[k] >= 0)
      c.nodes[chain_of[owner[k]]].push_back(ki);
    auto &lc = leaf_chains[k];
    std::sort(lc.begin(), lc.end());
    lc.erase(std::unique(lc.begin(), lc.end()), lc.end());
    for (int ch : lc)
      c.nodes[ch].push_back(ki);
  }
  return c;
}

void plan_segments(const Node &n, KernelPlan &p) {
  const Graph &body = *n.body;
  for (auto &np : body.nodes())
    if (!is_body_op(*np))
      fail("fused {} body holds {}, which is not elementwise",
           fused_kind_name(*fused_kind_of(n)), op_name(np->op));
  size_t nn = body.nodes().size();
  Cones cones = chain_cones(n);
  std::vector<std::vector<int>> &chains = cones.chains;
  std::vector<std::vector<int>> &seg_nodes = cones.nodes;
  // Body input positions, for the reads below.
  std::unordered_map<const Value *, int> input_pos;
  for (size_t i = 0; i < body.inputs().size(); ++i)
    input_pos.emplace(body.inputs()[i].value, static_cast<int>(i));
  int64_t start = 0;
  for (size_t si = 0; si < chains.size(); ++si) {
    SegmentPlan s;
    s.needed.assign(nn, false);
    for (int k : seg_nodes[si])
      s.needed[k] = true;
    s.outputs = std::move(chains[si]);
    Shape space = n.results[s.outputs[0]]->type.shape;
    // Which body inputs this segment reads.
    std::vector<bool> reads(body.inputs().size(), false);
    auto note = [&](const Value *v) {
      if (auto it = input_pos.find(v); it != input_pos.end())
        reads[it->second] = true;
    };
    for (int k : seg_nodes[si])
      for (const Value *v : body.nodes()[k]->operands)
        note(v);
    for (int o : s.outputs)
      note(body.outputs[o].value);
    std::vector<std::vector<int64_t>> st;
    std::vector<int> which;
    for (size_t i = 0; i < reads.size(); ++i)
      if (reads[i]) {
        const Shape &from = body.inputs()[i].value->type.shape;
        if (!broadcasts_to(from, space))
          fail("fused input {} of shape {} does not broadcast to {}", i,
               shape_str(from), shape_str(space));
        st.push_back(broadcast_strides(from, space));
        which.push_back(static_cast<int>(i));
      }
    for (int k : seg_nodes[si]) // in body order
      if (body.nodes()[k]->op == Op::Iota) {
        s.iotas.push_back(static_cast<int>(k));
        st.push_back(iota_strides(*body.nodes()[k], space));
      }
    st.push_back(contiguous_strides(space)); // the outputs
    s.dims = space;
    std::vector<int> cls;
    collapse_axes(s.dims, st, cls, /*keep_one=*/true);
    s.in_strides.assign(reads.size(), {});
    for (size_t j = 0; j < which.size(); ++j)
      s.in_strides[which[j]] = st[j];
    for (size_t j = 0; j < s.iotas.size(); ++j)
      s.iota_strides.push_back(st[which.size() + j]);
    s.numel = numel(space);
    s.start = start;
    start += s.numel;
    double bytes = 0;
    for (size_t i = 0; i < reads.size(); ++i)
      if (reads[i])
        bytes += dtype_size(body.inputs()[i].value->type.dtype);
    for (int o : s.outputs)
      bytes += dtype_size(n.results[o]->type.dtype);
    p.bytes_per_item = std::max(p.bytes_per_item, bytes);
    p.segments.push_back(std::move(s));
  }
  p.work = start;
}

void plan_reduction(const Node &n, KernelPlan &p) {
  const Graph &body = *n.body;
  const auto &nodes = body.nodes();
  size_t nn = nodes.size();
  ReductionPlan &r = p.red;
  ReductionBody rb = split_reduction_body(body);
  size_t nout = body.outputs.size();
  if (n.results.size() != nout)
    fail("fused reduction has {} results but its body {} outputs",
         n.results.size(), nout);
  r.reduce_node = rb.reduce;
  r.prologue = std::move(rb.prologue);
  r.epilogue = std::move(rb.epilogue);
  r.extras = std::move(rb.extras);
  const Node &red = *nodes[r.reduce_node];
  bool softmax = red.op == Op::Softmax || red.op == Op::LogSoftmax;
  const Type &xt = red.operands[0]->type;
  const Shape &xs = xt.shape;
  for (int k : r.extras)
    if (n.results[k]->type.shape != xs)
      fail("fused reduction result {} has shape {}, not the reduced "
           "operand's {}",
           k, shape_str(n.results[k]->type.shape), shape_str(xs));
  r.op = red.op;
  int rank = xt.rank();
  std::vector<int> cls(rank, 0);
  if (softmax) {
    cls[normalize_axis(attr_int(red, "axis"), rank)] = 1;
  } else {
    for (int a : reduction_axes(red.attrs, rank))
      cls[a] = 1;
  }
  r.count = 1;
  for (int a = 0; a < rank; ++a)
    if (cls[a])
      r.count *= xs[a];
  std::vector<std::vector<int64_t>> st;
  for (auto &in : body.inputs()) {
    if (!broadcasts_to(in.value->type.shape, xs))
      fail("fused reduction input of shape {} does not broadcast to {}",
           shape_str(in.value->type.shape), shape_str(xs));
    st.push_back(broadcast_strides(in.value->type.shape, xs));
  }
  for (size_t k = 0; k < nn; ++k)
    if (r.prologue[k] && nodes[k]->op == Op::Iota) {
      r.iotas.push_back(static_cast<int>(k));
      st.push_back(iota_strides(*nodes[k], xs));
    }
  if (!r.extras.empty())
    st.push_back(contiguous_strides(xs));
  if (softmax) {
    st.push_back(contiguous_strides(xs));
  } else {
    Shape kept = xs;
    for (int a = 0; a < rank; ++a)
      if (cls[a])
        kept[a] = 1;
    st.push_back(broadcast_strides(kept, xs));
  }
  r.dims = xs;
  collapse_axes(r.dims, st, cls, /*keep_one=*/false);
  if (std::find(cls.begin(), cls.end(), 1) == cls.end()) {
    // Nothing left to reduce (only size-1 axes): one reduced axis of size 1.
    r.dims.push_back(1);
    cls.push_back(1);
    for (auto &s : st)
      s.push_back(0);
  }
  int last_r = 0;
  for (int a = 0; a < static_cast<int>(cls.size()); ++a)
    if (cls[a])
      last_r = a;
  for (int a = 0; a < static_cast<int>(cls.size()); ++a) {
    if (cls[a])
      r.r_axes.push_back(a), r.r_total *= r.dims[a];
    else if (a < last_r)
      r.o_axes.push_back(a), r.o_total *= r.dims[a];
    else
      r.i_axes.push_back(a), r.i_total *= r.dims[a];
  }
  r.out_strides = st.back();
  st.pop_back();
  if (!r.extras.empty()) {
    r.extra_strides = st.back();
    st.pop_back();
  }
  for (size_t j = r.iotas.size(); j-- > 0;) {
    r.iota_strides.insert(r.iota_strides.begin(), st.back());
    st.pop_back();
  }
  r.in_strides = std::move(st);
  r.tile = r.i_total == 1 ? 1 : std::min<int64_t>(r.i_total, 256);
  r.n_tiles = (r.i_total + r.tile - 1) / r.tile;
  p.kind = KernelPlan::Kind::reduction;
  p.work = r.o_total * r.n_tiles;
  double bytes = static_cast<double>(dtype_size(xt.dtype));
  for (int k : r.extras)
    bytes += static_cast<double>(dtype_size(n.results[k]->type.dtype));
  p.bytes_per_item =
      bytes * static_cast<double>(r.r_total * r.tile) * (softmax ? 3.0 : 1.0);
}

void key_graph(const Graph &g, std::string &k) {
  std::unordered_map<const Value *, int> num;
  auto ref = [&](const Value *v) {
    auto it = num.find(v);
    k += it == num.end() ? std::string("?") : std::to_string(it->second);
    k += ',';
  };
  for (auto &in : g.inputs()) {
    num[in.value] = static_cast<int>(num.size());
    k += in.value->type.str();
    k += ';';
  }
  for (auto &np : g.nodes()) {
    k += op_name(np->op);
    k += '(';
    for (const Value *v : np->operands)
      ref(v);
    k += ")";
    for (const Value *r : np->results) {
      num[r] = static_cast<int>(num.size());
      k += r->type.str();
    }
    for (auto &[name, val] : np->attrs.items())
      k += fmt::format(" {}={}", name, attr_str(val));
    if (np->body) {
      k += '{';
      key_graph(*np->body, k);
      k += '}';
    }
    k += ';';
  }
  k += "->";
  for (auto &o : g.outputs)
    ref(o.value);
}

} // namespace

KernelPlan plan_kernel(const Node &n) {
  if (n.op != Op::Fused || !n.body)
    fail("LLVM kernels are built from fused nodes, got {}", op_name(n.op));
  auto kind = fused_kind_of(n);
  if (!kind)
    fail("fused node without a known kind");
  if (n.body->inputs().size() != n.operands.size())
    fail("fused node has {} operands but its body {} inputs", n.operands.size(),
         n.body->inputs().size());
  KernelPlan p;
  switch (*kind) {
  case FusedKind::elementwise:
    plan_segments(n, p);
    break;
  case FusedKind::multi_tensor:
    plan_segments(n, p);
    break;
  case FusedKind::reduction:
    plan_reduction(n, p);
    break;
  }
  return p;
}

std::vector<std::vector<int>> output_chains(const Node &n) {
  return chain_cones(n).chains;
}

std::unique_ptr<Graph> wrap_as_fused(const Node &n) {
  std::unique_ptr<Graph> body = one_node_body(n);
  std::vector<Type> types;
  for (const Value *r : n.results)
    types.push_back(r->type);
  auto g = std::make_unique<Graph>("wrap");
  std::vector<Value *> outer;
  for (size_t i = 0; i < n.operands.size(); ++i)
    outer.push_back(g->add_input(fmt::format("a{}", i), n.operands[i]->type));
  FusedKind kind =
      n.info().has(kReduction) ? FusedKind::reduction : FusedKind::elementwise;
  Node *f = g->append(Op::Fused, outer, types,
                      {{"kind", fused_kind_attr(kind)}}, std::move(body));
  for (Value *r : f->results)
    g->add_output(r);
  return g;
}

std::unique_ptr<Graph> make_copy_kernel(const Type &from, const Shape &to) {
  auto body = std::make_unique<Graph>("body");
  body->add_output(body->add_input("x", from));
  auto g = std::make_unique<Graph>("copy");
  Value *x = g->add_input("x", from);
  Node *f = g->append(Op::Fused, {x}, {Type{from.dtype, to}},
                      {{"kind", fused_kind_attr(FusedKind::elementwise)}},
                      std::move(body));
  g->add_output(f->result());
  return g;
}

std::string kernel_key(const Node &n) {
  auto kind = fused_kind_of(n);
  std::string k = std::string(kind ? fused_kind_name(*kind) : "?") + ":";
  for (const Value *r : n.results)
    k += r->type.str();
  // Node attributes beyond the kind (a multi_tensor node's `chains`)
  // change the loops.
  for (auto &[name, val] : n.attrs.items())
    if (name != "kind")
      k += fmt::format(" {}={}", name, attr_str(val));
  k += '|';
  key_graph(*n.body, k);
  return k;
}

} // namespace kiln
