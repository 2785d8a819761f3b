// fuse-elementwise: greedy vertical fusion, walking the nodes from last to
// first so that every node is offered to the groups of its consumers (the
// way XLA's instruction fusion walks). For a node N:
//  - a reduction (sum, mean, amax, softmax, log_softmax) starts a group of
//    kind "reduction" whose iteration space is its operand's shape;
//  - an elementwise N whose consumers are all in one group G joins G (its
//    value stays inside the kernel); if they are in several groups and N is
//    cheap (the op trait kCheapToRecompute in ir/ops.def: not exp, log,
//    sqrt, rsqrt, tanh, sigmoid, pow or div), N is RECOMPUTED in each of
//    them rather than stored; otherwise, or when the
//    value is also needed outside any group (a non-fusible consumer such as
//    matmul, or a graph output), N joins a consumer group of kind
//    "elementwise" whose iteration space equals N's shape as an extra
//    result (materialized), or else starts its own group;
//  - an elementwise N whose value is also needed outside (see above) may
//    instead join a consumer group of kind "reduction" (sum/mean/amax over
//    N's shape) as an extra result: the reduction kernel writes N while it
//    reads it (a bias gradient's column sum and the matmul operand it sums);
//  - a fill `constant`, an `iota` or a `broadcast_to` is folded into every
//  consumer
//    group where that leaves the consumer's shape unchanged (a constant
//    becomes a scalar constant of the body, a broadcast_to becomes implicit
//    broadcasting of its operand); it stays a node of its own where a
//    consumer is not covered;
//  - anything else (matmul, transpose, reshape, one_hot, random_uniform,
//    fused) is a materialization point: never fused across.
// Joining as an extra result is refused when it would make a cycle between
// kernels (a path from N through another kernel back into the group).
//
// Before grouping, one_hot(y) of a data input y is lowered to
// cast(eq(reshape(y, [..., 1]), iota(C))), which fuses into its users
// instead of being a kernel of its own; the label check one_hot does
// (labels in [0, C)) moves to y's input range, which every backend checks
// before the step runs. After grouping, an elementwise group that only
// consumes the result of a sum/mean/amax group (and scalar constants), and
// whose space is that result's shape, becomes the reduction's epilogue
// (the loss's division and negation run in the reduction's kernel).
//
// CONTRACT for the code generators:
//  - kind = "elementwise": ONE iteration space, the shape of the node's
//    results (all results have that shape). Every body input's shape
//    numpy-broadcasts to that space. Body nodes are elementwise ops, scalar
//    fill `constant`s (type dtype[]) and `iota`s. A body value may have a
//    smaller shape than the space (an op applied to an input before
//    broadcasting); evaluating it at every point of the space is correct
//    because elementwise ops commute with broadcasting. An iota of shape S
//    (S broadcasts to the space) is read like an input whose element at
//    index p of S is p[axis]: at a point of the space it is that point's
//    coordinate along the space axis that S's `axis` lines up with.
//  - kind = "reduction": an iteration space X, the shape of the reduction
//    node's operand, and three parts in body order:
//      1. a prologue over X: elementwise ops, scalar constants and iotas as
//         above (every body input broadcasts to X);
//      2. exactly ONE reduction node R: sum/mean/amax over `axes`, or
//         softmax/log_softmax along `axis`;
//      3. after sum/mean/amax only, an epilogue: elementwise ops and scalar
//         constants whose other operands are R's result or earlier
//         epilogue values (never a body input or a prologue value); they
//         all have R's result shape.
//    Output 0 is R's result or an epilogue value (the reduced output).
//    After sum/mean/amax, outputs 1.. may be prologue values of shape
//    exactly X: each is written at every point of X as the reduction visits
//    it (XLA's multi-output fusion), so a value that a matmul also needs is
//    not computed twice. Every reduction becomes such a node, even without
//    a prologue.
//  - body inputs are the fused node's operands, in order; the body graph
//    is named fused_N, N counting the top-level fused nodes in order.
#include "passes/fuse_elementwise.h"

#include "ir/builder.h"
#include "ir/error.h"
#include "ir/fused_kind.h"
#include "passes/rewrite.h"

#include <algorithm>
#include <bit>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace kiln {

namespace {

bool is_reduction(Op op) {
  return op == Op::Sum || op == Op::Mean || op == Op::Amax ||
         op == Op::Softmax || op == Op::LogSoftmax;
}

bool is_plain_reduction(Op op) {
  return op == Op::Sum || op == Op::Mean || op == Op::Amax;
}

struct Group {
  bool reduction = false;
  bool dead = false; // merged into another group
  Shape space;
  Node *root = nullptr;
  Node *reduced_out = nullptr; // reduction: output 0 (root or epilogue end)
  std::unordered_set<Node *> members; // root, joined, folded
  std::unordered_set<Node *> folded;  // constants and broadcast_tos
  std::unordered_set<Node *> outputs; // root and materialized members
};

class Fuser {
public:
  explicit Fuser(Graph &g) : g_(g) {
    pos_.reserve(g.nodes().size());
    node_groups_.reserve(g.nodes().size());
    for (auto &n : g.nodes()) {
      pos_[n.get()] = static_cast<int>(order_.size());
      order_.push_back(n.get());
    }
    build_users();
    for (const GraphOutput &o : g.outputs)
      is_output_.insert(o.value);
  }

  bool run() {
    for (size_t i = order_.size(); i-- > 0;)
      visit(order_[i]);
    if (groups_.empty())
      return false;
    merge_epilogues();
    rewrite();
    return true;
  }

private:
  // ---- grouping ----

  // The users of each top-level value in node order (as Graph::users), in
  // one array indexed by Value::id: two allocations for the whole graph
  // instead of a hashed vector per value.
  struct Users {
    Node *const *b = nullptr, *const *e = nullptr;
    Node *const *begin() const { return b; }
    Node *const *end() const { return e; }
  };

  void build_users() {
    int bound = -1;
    for (const GraphInput &in : g_.inputs())
      bound = std::max(bound, in.value->id);
    for (Node *n : order_)
      for (const Value *r : n->results)
        bound = std::max(bound, r->id);
    size_t ids = static_cast<size_t>(bound + 1);
    user_start_.assign(ids + 1, 0);
    std::vector<int64_t> last(ids, -1); // a node using v twice counts once
    auto each_use = [&](auto &&f) {
      std::fill(last.begin(), last.end(), -1);
      for (size_t i = 0; i < order_.size(); ++i)
        for (const Value *o : order_[i]->operands) {
          size_t id = static_cast<size_t>(o->id);
          if (id >= ids || last[id] == static_cast<int64_t>(i))
            continue;
          last[id] = static_cast<int64_t>(i);
          f(id, order_[i]);
        }
    };
    each_use([&](size_t id, Node *) { ++user_start_[id + 1]; });
    for (size_t k = 0; k < ids; ++k)
      user_start_[k + 1] += user_start_[k];
    user_list_.assign(user_start_[ids], nullptr);
    std::vector<size_t> fill(user_start_.begin(), user_start_.end() - 1);
    each_use([&](size_t id, Node *u) { user_list_[fill[id]++] = u; });
  }

  Users users(const Value *v) const {
    size_t id = static_cast<size_t>(v->id);
    if (id + 1 >= user_start_.size())
      return {};
    return {user_list_.data() + user_start_[id],
            user_list_.data() + user_start_[id + 1]};
  }

  int new_group(Node *n, bool reduction) {
    Group gr;
    gr.reduction = reduction;
    gr.space = reduction ? n->operands[0]->type.shape : n->result()->type.shape;
    gr.root = n;
    gr.reduced_out = reduction ? n : nullptr;
    gr.members.insert(n);
    gr.outputs.insert(n);
    groups_.push_back(std::move(gr));
    int k = static_cast<int>(groups_.size()) - 1;
    node_groups_[n].push_back(k);
    return k;
  }

  void join(Node *n, int k, bool materialize) {
    groups_[k].members.insert(n);
    if (materialize)
      groups_[k].outputs.insert(n);
    node_groups_[n].push_back(k);
  }

  void visit(Node *n) {
    if (is_reduction(n->op)) {
      new_group(n, /*reduction=*/true);
      return;
    }
    if (n->op == Op::Constant || n->op == Op::BroadcastTo ||
        n->op == Op::Iota) {
      visit_foldable(n);
      return;
    }
    if (!n->info().has(kElementwise)) {
      standalone_.insert(n);
      return;
    }
    bool external = is_output_.count(n->result()) > 0;
    // The consumer groups, sorted and unique (a vector: no allocation per
    // element as a std::set would make for every node).
    std::vector<int> gs;
    for (Node *u : users(n->result())) {
      external = external || standalone_.count(u);
      if (auto it = node_groups_.find(u); it != node_groups_.end())
        gs.insert(gs.end(), it->second.begin(), it->second.end());
    }
    std::sort(gs.begin(), gs.end());
    gs.erase(std::unique(gs.begin(), gs.end()), gs.end());
    if (gs.empty()) {
      new_group(n, false);
      return;
    }
    if (!external && gs.size() == 1) {
      join(n, *gs.begin(), false);
      return;
    }
    if (!external && n->info().has(kCheapToRecompute)) {
      for (int k : gs) // recomputed in each consumer kernel
        join(n, k, false);
      return;
    }
    for (int k : gs) {
      const Group &gr = groups_[k];
      bool open = !gr.reduction || is_plain_reduction(gr.root->op);
      if (open && gr.space == n->result()->type.shape && !makes_cycle(n, k)) {
        join(n, k, true);
        return;
      }
    }
    new_group(n, false);
  }

  void visit_foldable(Node *n) {
    bool outside = is_output_.count(n->result()) > 0;
    for (Node *u : users(n->result())) {
      outside = outside || standalone_.count(u);
      for (int k : node_groups_[u]) {
        if (groups_[k].members.count(n))
          continue;
        if (foldable(n, k)) {
          groups_[k].members.insert(n);
          groups_[k].folded.insert(n);
          node_groups_[n].push_back(k);
        } else {
          outside = true;
        }
      }
    }
    if (outside || node_groups_[n].empty())
      standalone_.insert(n);
  }

  // The shape a folded node's value has inside a body: a constant becomes a
  // scalar, a broadcast_to its operand, an iota stays as it is.
  static Shape folded_shape(const Node &n) {
    if (n.op == Op::Constant)
      return {};
    if (n.op == Op::Iota)
      return n.result()->type.shape;
    return n.operands[0]->type.shape;
  }

  // The shape `v` has inside group k's body.
  Shape body_shape(const Value *v, int k) const {
    const Group &gr = groups_[k];
    if (v->def && gr.folded.count(v->def))
      return folded_shape(*v->def);
    return v->type.shape;
  }

  // Folding constant/broadcast_to n into group k must leave the shape of
  // each consumer in k as it was.
  bool foldable(Node *n, int k) const {
    const Group &gr = groups_[k];
    if (n->op == Op::Constant && n->results.size() != 1)
      return false;
    Shape folded = folded_shape(*n);
    for (Node *u : users(n->result())) {
      if (!gr.members.count(u))
        continue;
      if (gr.folded.count(u) || !u->info().has(kElementwise))
        return false;
      Shape s;
      for (const Value *o : u->operands) {
        Shape os = o == n->result() ? folded : body_shape(o, k);
        auto b = broadcast_shapes(s, os);
        if (!b)
          return false;
        s = *b;
      }
      if (s != u->result()->type.shape)
        return false;
    }
    return true;
  }

  // A unit of the graph being contracted: a group (k >= 0) or a node that
  // stays on its own (-(pos + 1)).
  int unit_of_node(const Node *n) const { return -(pos_.at(n) + 1); }

  // The units that consume values of `from` (whose members are `members`,
  // or the node itself).
  void consumers(const Node *m, int from, std::vector<int> &out) const {
    for (const Value *r : m->results)
      for (Node *u : users(r)) {
        auto it = node_groups_.find(u);
        if (it != node_groups_.end())
          for (int k : it->second)
            if (k != from && !groups_[k].members.count(const_cast<Node *>(m)))
              out.push_back(k);
        if (standalone_.count(u) && unit_of_node(u) != from)
          out.push_back(unit_of_node(u));
      }
  }

  // Would n, joining group k as an extra result, close a cycle? That is:
  // does some other consumer of n reach k? The search walks everything
  // downstream of n, so on a long chain of kernels (matmuls between
  // elementwise ops) every question cost the whole graph: quadratic, 53 s
  // for 12k nodes. Past kMaxCycleSearch units it stops and answers yes,
  // which is always safe (n then gets a kernel of its own or joins another
  // group; the values computed do not change). A 128-layer MLP's step asks
  // at most 770 units.
  static constexpr size_t kMaxCycleSearch = 4096;
  bool makes_cycle(Node *n, int k) const {
    std::vector<int> frontier;
    consumers(n, k, frontier);
    // Units seen in this search: stamped with the search's number (no set
    // to build per question).
    ++search_;
    group_seen_.resize(groups_.size(), 0);
    node_seen_.resize(order_.size(), 0);
    size_t seen = 0;
    while (!frontier.empty()) {
      int u = frontier.back();
      frontier.pop_back();
      if (u == k)
        return true;
      int &stamp = u >= 0 ? group_seen_[static_cast<size_t>(u)]
                          : node_seen_[static_cast<size_t>(-u - 1)];
      if (stamp == search_)
        continue;
      stamp = search_;
      if (++seen > kMaxCycleSearch)
        return true;
      if (u >= 0) {
        for (Node *m : groups_[u].outputs)
          consumers(m, u, frontier);
      } else {
        consumers(order_[-u - 1], u, frontier);
      }
    }
    return false;
  }

  // An elementwise group E becomes the epilogue of reduction group R when
  // E's only input from outside is R's reduced result (its other operands
  // are folded scalar constants), nothing else uses that result, E has one
  // output and E's space is the result's shape.
  void merge_epilogues() {
    for (size_t e = 0; e < groups_.size(); ++e) {
      Group &eg = groups_[e];
      if (eg.dead || eg.reduction || eg.outputs.size() != 1)
        continue;
      const Value *from = nullptr;
      bool ok = true;
      for (Node *m : eg.members) {
        if (eg.folded.count(m)) {
          ok = ok && m->op == Op::Constant;
          continue;
        }
        for (const Value *o : m->operands) {
          if (o->def && eg.members.count(o->def))
            continue;
          ok = ok && (!from || from == o);
          from = o;
        }
      }
      if (!ok || !from || !from->def || is_output_.count(from))
        continue;
      auto it = node_groups_.find(from->def);
      if (it == node_groups_.end() || it->second.size() != 1 ||
          standalone_.count(from->def))
        continue;
      int r = it->second[0];
      Group &rg = groups_[r];
      if (rg.dead || !rg.reduction || rg.reduced_out != from->def ||
          !is_plain_reduction(rg.root->op) || eg.space != from->type.shape)
        continue;
      for (Node *u : users(from))
        ok = ok && eg.members.count(u) && node_groups_[u].size() == 1;
      if (!ok)
        continue;
      for (Node *m : eg.members) {
        rg.members.insert(m);
        if (eg.folded.count(m))
          rg.folded.insert(m);
        std::replace(node_groups_[m].begin(), node_groups_[m].end(),
                     static_cast<int>(e), r);
      }
      rg.outputs.erase(rg.reduced_out);
      rg.reduced_out = *eg.outputs.begin();
      rg.outputs.insert(rg.reduced_out);
      eg.dead = true;
    }
  }

  // ---- rewriting ----

  // Linear in the graph: each fused node is appended and put just before
  // its group's root by one reordering, and the uses of the replaced values
  // move in one walk (not one search of the node list per group and per
  // replaced value).
  void rewrite() {
    std::unordered_map<const Value *, Value *> replace;
    for (Group &gr : groups_)
      if (!gr.dead)
        build(gr, replace);
    std::vector<Node *> order;
    order.reserve(g_.nodes().size());
    for (Node *n : order_) {
      if (auto it = before_.find(n); it != before_.end())
        order.insert(order.end(), it->second.begin(), it->second.end());
      order.push_back(n);
    }
    g_.reorder(order);
    for (auto &np : g_.nodes())
      for (Value *&o : np->operands)
        if (auto it = replace.find(o); it != replace.end())
          o = it->second;
    for (GraphOutput &o : g_.outputs)
      if (auto it = replace.find(o.value); it != replace.end())
        o.value = it->second;
    std::unordered_set<const Node *> erase;
    for (auto &[n, ks] : node_groups_)
      if (!ks.empty() && !standalone_.count(n))
        erase.insert(n);
    g_.erase_nodes_if([&](const Node &n) { return erase.count(&n) > 0; });
    topo_sort(g_);
    number_fused_bodies(g_);
  }

  void build(const Group &gr, std::unordered_map<const Value *, Value *> &rep) {
    // In node order (one position lookup per member, not per comparison).
    std::vector<std::pair<int, Node *>> by_pos;
    by_pos.reserve(gr.members.size());
    for (Node *m : gr.members)
      by_pos.emplace_back(pos_.at(m), m);
    std::sort(by_pos.begin(), by_pos.end());
    std::vector<Node *> members;
    members.reserve(by_pos.size());
    for (auto &pm : by_pos)
      members.push_back(pm.second);
    auto body = std::make_unique<Graph>("fused");
    Builder b(*body);
    std::unordered_map<const Value *, Value *> map;
    map.reserve(2 * members.size());
    std::map<std::pair<DType, uint64_t>, Value *> scalars;
    std::vector<Value *> inputs;
    auto get = [&](Value *v) {
      if (auto it = map.find(v); it != map.end())
        return it->second;
      bool named = !v->name.empty() &&
                   v->name.find_first_not_of("0123456789") != std::string::npos;
      Value *in = body->add_input(named ? v->name : "", v->type);
      inputs.push_back(v);
      map[v] = in;
      return in;
    };
    for (Node *m : members) {
      if (gr.folded.count(m)) {
        const Type &t = m->result()->type;
        if (m->op == Op::Constant) {
          // One body constant per (dtype, value bits): fills of different
          // shapes outside become the same scalar inside.
          double v = m->attrs.get_float("value");
          auto key = std::pair{t.dtype, std::bit_cast<uint64_t>(v)};
          auto it = scalars.find(key);
          if (it == scalars.end())
            it = scalars.emplace(key, b.constant(v, {t.dtype, {}})).first;
          map[m->result()] = it->second;
        } else if (m->op == Op::Iota) {
          map[m->result()] = b.iota(t, static_cast<int>(attr_int(*m, "axis")));
        } else {
          map[m->result()] = get(m->operands[0]);
        }
        continue;
      }
      std::vector<Value *> ops;
      for (Value *o : m->operands)
        ops.push_back(get(o));
      Node *c = b.create(m->op, std::move(ops), m->attrs);
      if (c->result()->type != m->result()->type)
        fail("fuse-elementwise: internal error: {} changed type in a body "
             "({} -> {})",
             m->info().name, m->result()->type.str(), c->result()->type.str());
      c->result()->name = m->result()->name;
      c->loc = m->loc; // re-inferred, not copied: keep where it came from
      map[m->result()] = c->result();
    }
    // Outputs in node order; a reduction's reduced output comes first.
    std::vector<Node *> outs(gr.outputs.begin(), gr.outputs.end());
    std::sort(outs.begin(), outs.end(), [&](Node *a, Node *b) {
      if ((a == gr.reduced_out) != (b == gr.reduced_out))
        return a == gr.reduced_out;
      return pos_.at(a) < pos_.at(b);
    });
    std::vector<Type> types;
    for (Node *o : outs) {
      body->add_output(map.at(o->result()));
      types.push_back(o->result()->type);
    }
    Node *f = g_.append(
        Op::Fused, std::move(inputs), std::move(types),
        {{"kind", fused_kind_attr(gr.reduction ? FusedKind::reduction
                                               : FusedKind::elementwise)}},
        std::move(body));
    before_[gr.root].push_back(f); // placed just before the root
    for (size_t i = 0; i < outs.size(); ++i) {
      f->results[i]->name = outs[i]->result()->name;
      rep.emplace(outs[i]->result(), f->results[i]);
    }
  }

  Graph &g_;
  std::vector<Node *> order_;
  std::unordered_map<const Node *, int> pos_;
  std::vector<size_t> user_start_; // by Value::id, into user_list_
  std::vector<Node *> user_list_;
  std::unordered_set<const Value *> is_output_;
  std::vector<Group> groups_;
  std::unordered_map<Node *, std::vector<int>> node_groups_;
  std::unordered_set<const Node *> standalone_;
  mutable int search_ = 0; // makes_cycle's searches, numbered
  mutable std::vector<int> group_seen_, node_seen_; // last search to see it
  // New fused nodes, by the node they go just before.
  std::unordered_map<const Node *, std::vector<Node *>> before_;
};

} // namespace

void number_fused_bodies(Graph &g) {
  int k = 0;
  for (auto &n : g.nodes())
    if (n->op == Op::Fused && n->body)
      n->body->name = fmt::format("fused_{}", k++);
}

// one_hot(y) of a data input y -> cast(eq(reshape(y, [..., 1]), iota(C))),
// with the label check moved to y's input range (intersected with the range
// y already has; left alone when that intersection would be empty).
bool lower_one_hots(Graph &g) {
  std::vector<Node *> hots;
  for (auto &n : g.nodes())
    if (n->op == Op::OneHot)
      hots.push_back(n.get());
  std::unordered_set<const Node *> lowered;
  for (Node *n : hots) {
    Value *y = n->operands[0];
    int i = g.input_index(y);
    if (i < 0 || g.inputs()[i].kind != InputKind::data)
      continue;
    int64_t c = n->attrs.get_int("num_classes");
    InputRange r{0, c, range_reader(*n)};
    if (const auto &old = g.inputs()[i].range)
      r = {std::max(old->lo, int64_t{0}), std::min(old->hi, c),
           old->reader.empty() ? r.reader : old->reader};
    if (r.lo >= r.hi)
      continue;
    g.set_input_range(i, r);
    const Type &t = n->result()->type;
    Shape col = y->type.shape;
    col.push_back(1);
    std::vector<int64_t> cols(col.begin(), col.end());
    Value *yc = nullptr; // reuse a reshape that canonicalize made
    for (auto &m : g.nodes())
      if (m->op == Op::Reshape && m->operands[0] == y &&
          m->result()->type.shape == col)
        yc = m->result();
    if (!yc)
      yc = g.insert_before(n, Op::Reshape, {y}, {{y->type.dtype, col}},
                           {{"shape", cols}})
               ->result();
    Value *iota = g.insert_before(n, Op::Iota, {}, {{y->type.dtype, {c}}},
                                  {{"axis", int64_t{0}}})
                      ->result();
    Value *eq =
        g.insert_before(n, Op::Eq, {yc, iota}, {{DType::boolean, t.shape}})
            ->result();
    Value *h = g.insert_before(n, Op::Cast, {eq}, {t},
                               {{"dtype", std::string(dtype_name(t.dtype))}})
                   ->result();
    g.replace_all_uses(n->result(), h);
    lowered.insert(n);
  }
  if (lowered.empty())
    return false;
  g.erase_nodes_if([&](const Node &n) { return lowered.count(&n) > 0; });
  topo_sort(g); // a reused reshape may come after the one_hot it replaces
  return true;
}

bool run_fuse_elementwise(Graph &g) {
  bool lowered = lower_one_hots(g);
  return Fuser(g).run() || lowered;
}

} // namespace kiln
