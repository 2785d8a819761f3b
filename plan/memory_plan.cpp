// The buffer assignment, in order.
//  1. Views. A reshape result shares its operand's storage (no copy, no
//     buffer of its own); so does a transpose of the last two axes whose
//     only users are matmuls (the GEMMs read it through their transpose
//     flag). Chains resolve to the first value that is not a view.
//  2. Fixed buffers. Graph inputs are bound per run; constants get constant
//     buffers; a non-aliased output is written straight into its own output
//     buffer by the launch producing it. An output aliasing a param/state
//     input is written straight into that input when that is safe (see
//     in_place_safe); otherwise it gets an arena slot and is copied into
//     the input at the end of the run (`copy_back`).
//  3. Liveness. Every other value lives from its defining node to the last
//     node reading it or any of its views (the end-of-run copies read at
//     index nodes().size()). Intervals are closed: a node's results never
//     share memory with its operands.
//  4. Placement (place_in_arena). Largest first, each at the lowest 64-byte
//     aligned offset that overlaps no placed buffer alive at the same time.
//     The arena is the highest end; no-reuse is the sum of the aligned
//     sizes.
#include "plan/memory_plan.h"

#include "ir/error.h"
#include "ir/fused_kind.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <map>
#include <numeric>
#include <unordered_set>

namespace kiln {

namespace {

int64_t align(int64_t b) {
  return (b + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
}

bool swaps_last_two(const Node &n) {
  const auto &perm = n.attrs.get_ints("perm");
  int r = static_cast<int>(perm.size());
  if (r < 2)
    return false;
  for (int a = 0; a < r - 2; ++a)
    if (perm[a] != a)
      return false;
  return perm[r - 2] == r - 1 && perm[r - 1] == r - 2;
}

// An aliased output v can be written into input `alias` by its producer D
// (node index `at`) when nothing reads the input's old value after D
// (`input_uses`: the node indices reading it through any view), and D reads
// it only at the index it writes: same shape, and within v's own
// elementwise segment, or v is an extra output of a fused reduction (whose
// single pass reads each point of the reduced operand's space once and
// then writes it).
bool in_place_safe(const Graph &g, MemoryPlan &plan, const Value *v, int alias,
                   int at, const std::vector<int> &input_uses) {
  const Node *d = v->def;
  if (!d || plan.folded.count(d) || d->op == Op::Reshape ||
      d->op == Op::Constant)
    return false;
  auto kind = fused_kind_of(*d);
  bool fused_reduction = kind == FusedKind::reduction;
  bool elementwise = d->info().has(kElementwise) || (kind && !fused_reduction);
  bool extra = fused_reduction && v->index >= 1;
  if (!elementwise && !extra)
    return false;
  const Value *w = g.inputs()[alias].value;
  if (w->type != v->type)
    return false;
  for (int s : input_uses)
    if (s > at)
      return false;
  // Reads by D itself.
  std::vector<int> ks;
  for (size_t k = 0; k < d->operands.size(); ++k) {
    const Value *o = d->operands[k];
    auto vi = plan.views.find(o);
    if ((vi == plan.views.end() ? o : vi->second) == w) {
      if (o->type.shape != v->type.shape)
        return false;
      ks.push_back(static_cast<int>(k));
    }
  }
  if (ks.empty() || d->op != Op::Fused || extra)
    return true;
  // One plan per kernel: a multi_tensor kernel is asked once per aliased
  // output, and planning it each time was quadratic in the model's depth.
  auto &p = plan.kernel_plans[d];
  if (!p)
    try {
      p = std::make_shared<const KernelPlan>(plan_kernel(*d));
    } catch (const Error &e) {
      fail_at_node(*d, fmt::format("lower: {}", e.what()));
    }
  for (const SegmentPlan &s : p->segments) {
    bool mine = std::find(s.outputs.begin(), s.outputs.end(), v->index) !=
                s.outputs.end();
    for (int k : ks)
      if (!mine && !s.in_strides[k].empty())
        return false;
  }
  return true;
}

std::string human(int64_t b) {
  if (b >= (int64_t{1} << 20))
    return fmt::format("{:.2f} MiB", static_cast<double>(b) / (1 << 20));
  if (b >= 1024)
    return fmt::format("{:.1f} KiB", static_cast<double>(b) / 1024);
  return fmt::format("{} B", b);
}

} // namespace

MemoryPlan plan_memory(const Graph &g) {
  MemoryPlan plan;
  const auto &nodes = g.nodes();
  const int end = static_cast<int>(nodes.size());
  auto users = g.users();
  std::unordered_set<const Value *> outputs;
  for (const GraphOutput &o : g.outputs)
    outputs.insert(o.value);
  std::unordered_map<const Value *, int> def_at;
  auto root = [&](const Value *v) {
    auto it = plan.views.find(v);
    return it == plan.views.end() ? v : it->second;
  };

  // 1. Views.
  for (int i = 0; i < end; ++i) {
    const Node &n = *nodes[i];
    for (const Value *r : n.results)
      def_at[r] = i;
    if (n.op == Op::Reshape) {
      plan.views[n.result()] = root(n.operands[0]);
    } else if (n.op == Op::Transpose && swaps_last_two(n) &&
               !outputs.count(n.result())) {
      auto &us = users[n.result()];
      bool only_matmul = !us.empty();
      for (const Node *u : us)
        only_matmul = only_matmul && u->op == Op::Matmul;
      if (only_matmul) {
        plan.folded.insert(&n);
        plan.views[n.result()] = root(n.operands[0]);
      }
    }
  }
  // Reads of each storage (through any view); the end-of-run copies read
  // every output at index `end`.
  std::unordered_map<const Value *, std::vector<int>> uses;
  for (int i = 0; i < end; ++i)
    for (const Value *v : nodes[i]->operands)
      uses[root(v)].push_back(i);
  for (const GraphOutput &o : g.outputs)
    uses[root(o.value)].push_back(end);

  // 2. Fixed buffers: inputs, constants, outputs.
  for (size_t i = 0; i < g.inputs().size(); ++i)
    plan.where[g.inputs()[i].value] = {Space::input, static_cast<int>(i), 0};
  for (const auto &np : nodes)
    if (np->op == Op::Constant) {
      plan.where[np->result()] = {Space::constant,
                                  static_cast<int>(plan.constants.size()), 0};
      plan.constants.push_back(np->result());
    }
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const GraphOutput &o = g.outputs[i];
    const Value *v = o.value;
    bool computed =
        v->def && !plan.views.count(v) && v->def->op != Op::Constant;
    if (!computed || plan.where.count(v))
      continue;
    if (o.alias < 0) {
      plan.where[v] = {Space::output, static_cast<int>(i), 0};
    } else if (in_place_safe(g, plan, v, o.alias, def_at.at(v),
                             uses[g.inputs()[o.alias].value])) {
      plan.where[v] = {Space::input, o.alias, 0};
      plan.in_place[v] = o.alias;
    } else {
      plan.copy_back.push_back(v);
    }
  }

  // 3. Liveness and 4. placement of everything else.
  std::vector<ArenaRequest> reqs;
  std::vector<const Value *> owners;
  for (int i = 0; i < end; ++i)
    for (const Value *r : nodes[i]->results) {
      if (plan.views.count(r) || plan.where.count(r))
        continue;
      int last = i;
      for (int s : uses[r])
        last = std::max(last, s);
      plan.live[r] = {i, last};
      reqs.push_back({static_cast<int64_t>(r->type.bytes()), i, last, 0});
      owners.push_back(r);
      // The arena is never larger than this sum, so checking it suffices.
      if (__builtin_add_overflow(plan.no_reuse_bytes,
                                 align(std::max<int64_t>(reqs.back().bytes, 1)),
                                 &plan.no_reuse_bytes))
        fail_at_node(*r->def,
                     fmt::format("memory-plan: graph @{}: the buffers up to "
                                 "%{} ({}, {} bytes) add up to more than 2^63 "
                                 "bytes",
                                 g.name, r->name, r->type.str(),
                                 reqs.back().bytes));
    }
  plan.arena_bytes = place_in_arena(reqs);
  for (size_t k = 0; k < owners.size(); ++k) {
    plan.slots[owners[k]] = {reqs[k].offset, reqs[k].bytes};
    plan.where[owners[k]] = {Space::arena, 0, reqs[k].offset};
  }
  for (auto &[view, own] : plan.views) {
    plan.where[view] = plan.where.at(own);
    if (auto it = plan.slots.find(own); it != plan.slots.end())
      plan.slots[view] = {it->second.offset,
                          static_cast<int64_t>(view->type.bytes())};
  }
  return plan;
}

namespace {

// The placed requests, indexed by their live intervals, so that finding the
// ones alive together with a new request costs O(log n + overlaps) rather
// than a scan of everything placed (which made memory-plan quadratic on long
// graphs). An interval overlapping [a, b] either contains a (a stabbing
// query on a segment tree whose nodes hold the intervals covering them) or
// starts in (a, b] (a range of the by-start index); the two are disjoint.
class LiveIndex {
public:
  explicit LiveIndex(int times) {
    while (size_ < times)
      size_ *= 2;
    cover_.resize(2 * static_cast<size_t>(size_));
  }

  void insert(size_t id, int first, int last) {
    by_first_.emplace(first, id);
    for (int l = first + size_, r = last + size_ + 1; l < r; l /= 2, r /= 2) {
      if (l & 1)
        cover_[l++].push_back(id);
      if (r & 1)
        cover_[--r].push_back(id);
    }
  }

  template <typename F> void overlapping(int first, int last, F &&f) const {
    for (int i = first + size_; i >= 1; i /= 2)
      for (size_t id : cover_[i])
        f(id);
    for (auto it = by_first_.upper_bound(first);
         it != by_first_.end() && it->first <= last; ++it)
      f(it->second);
  }

private:
  int size_ = 1;
  std::vector<std::vector<size_t>> cover_;
  std::multimap<int, size_t> by_first_;
};

} // namespace

int64_t place_in_arena(std::vector<ArenaRequest> &reqs, int64_t *visited) {
  std::vector<size_t> order(reqs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return reqs[a].bytes > reqs[b].bytes;
  });
  int times = 1;
  for (const ArenaRequest &r : reqs) {
    assert(r.first >= 0 && r.first <= r.last && "live interval");
    times = std::max(times, r.last + 1);
  }
  LiveIndex placed(times);
  int64_t total = 0;
  std::vector<std::pair<int64_t, int64_t>> busy;
  int64_t seen = 0;
  for (size_t i : order) {
    ArenaRequest &r = reqs[i];
    // Address ranges of placed buffers alive at the same time, by offset.
    busy.clear();
    placed.overlapping(r.first, r.last, [&](size_t j) {
      const ArenaRequest &p = reqs[j];
      ++seen;
      busy.emplace_back(p.offset,
                        p.offset + align(std::max<int64_t>(p.bytes, 1)));
    });
    std::sort(busy.begin(), busy.end());
    int64_t off = 0, need = align(std::max<int64_t>(r.bytes, 1));
    for (auto [b, e] : busy) {
      if (need <= b - off) // off + need <= b, without overflow
        break;
      off = std::max(off, e);
    }
    r.offset = off;
    int64_t end = 0;
    if (__builtin_add_overflow(off, need, &end))
      fail("memory plan: an arena buffer of {} bytes ends past 2^63 bytes",
           r.bytes);
    total = std::max(total, end);
    placed.insert(i, r.first, r.last);
  }
  if (visited)
    *visited = seen;
  return total;
}

std::string memory_plan_summary(const MemoryPlan &plan) {
  double saved = plan.no_reuse_bytes
                     ? 100.0 * (plan.no_reuse_bytes - plan.arena_bytes) /
                           plan.no_reuse_bytes
                     : 0.0;
  return fmt::format("memory-plan: arena {} ({} bytes), {} ({} bytes) "
                     "without reuse, {:.1f}% saved; {} in place, {} "
                     "copied back",
                     human(plan.arena_bytes), plan.arena_bytes,
                     human(plan.no_reuse_bytes), plan.no_reuse_bytes, saved,
                     plan.in_place.size(), plan.copy_back.size());
}

PrintOptions memory_plan_print_options(const MemoryPlan &plan, const Graph &g) {
  PrintOptions o;
  o.annotate = [&plan, &g](const Node &n) -> std::string {
    std::vector<std::string> notes;
    for (const Value *r : n.results) {
      std::string s;
      auto w = plan.where.find(r);
      if (auto it = plan.in_place.find(r); it != plan.in_place.end())
        s = fmt::format("in place of %{}", g.inputs()[it->second].value->name);
      else if (auto sl = plan.slots.find(r); sl != plan.slots.end())
        s = fmt::format("offset={}, bytes={}", sl->second.offset,
                        sl->second.bytes);
      else if (auto v = plan.views.find(r); v != plan.views.end())
        s = fmt::format("view of %{}", v->second->name);
      else if (w != plan.where.end() && w->second.space == Space::output)
        s = fmt::format("output {}", w->second.index);
      else if (w != plan.where.end() && w->second.space == Space::constant)
        s = fmt::format("constant {}", w->second.index);
      else
        continue;
      if (plan.folded.count(&n))
        s += " (transposed: read by gemms with a transpose flag)";
      notes.push_back(n.results.size() > 1 ? fmt::format("[{}] {}", r->index, s)
                                           : s);
    }
    std::string out;
    for (size_t i = 0; i < notes.size(); ++i)
      out += (i ? "; " : "") + notes[i];
    return out;
  };
  return o;
}

} // namespace kiln
