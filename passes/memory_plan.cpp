// memory-plan: the algorithm, in order.
//  1. Storage owners. A reshape result shares its operand's storage (a
//     reshape of a contiguous buffer is a view: no copy, no slot of its
//     own); chains of reshapes resolve to the first non-reshape value.
//  2. In place. An output aliasing a param/state input is written straight
//     into that input's buffer when its producer reads the input (if at
//     all) only index by index (elementwise, fused elementwise or
//     multi_tensor) and no later node reads the input; otherwise it gets a
//     slot and is copied back (`copy_back`).
//  3. Liveness. Each owner lives from its defining node to the last node
//     that uses it or any of its views; non-aliased graph outputs live to
//     the end. Intervals are closed: a node's results never share memory
//     with its operands.
//  4. Placement. Owners sorted by size (largest first, then by definition)
//     are placed first-fit: the lowest 64-byte aligned offset that overlaps
//     no already placed owner whose interval overlaps. The arena is the
//     highest end; no-reuse is the sum of the aligned sizes.
#include "passes/memory_plan.h"

#include "ir/error.h"

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

bool index_by_index(const Node &n) {
  if (n.info().has(kElementwise))
    return true;
  if (n.op != Op::Fused)
    return false;
  const AttrValue *k = n.attrs.find("kind");
  auto *s = k ? std::get_if<std::string>(k) : nullptr;
  return s && (*s == "elementwise" || *s == "multi_tensor");
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
  std::unordered_map<const Value *, int> def_at;
  std::unordered_map<const Value *, int> last_read; // for inputs too
  for (int i = 0; i < end; ++i) {
    for (const Value *r : nodes[i]->results)
      def_at[r] = i;
    for (const Value *o : nodes[i]->operands)
      last_read[o] = std::max(last_read.count(o) ? last_read[o] : -1, i);
  }

  // 1. Storage owners.
  auto owner = [&](const Value *v) {
    while (v->def && v->def->op == Op::Reshape)
      v = v->def->operands[0];
    return v;
  };
  for (auto &n : nodes)
    if (n->op == Op::Reshape)
      plan.views[n->result()] = owner(n->result());

  // The last read of any view of each storage owner (for step 2).
  std::unordered_map<const Value *, int> view_last_read;
  for (auto &[view, own] : plan.views)
    if (auto it = last_read.find(view); it != last_read.end()) {
      auto [at, fresh] = view_last_read.emplace(own, it->second);
      if (!fresh)
        at->second = std::max(at->second, it->second);
    }

  // 2. In place.
  std::unordered_set<const Value *> plain_outputs;
  for (const GraphOutput &o : g.outputs) {
    if (o.alias < 0 || !o.value->def) {
      plain_outputs.insert(o.value);
      continue;
    }
    const Value *input = g.inputs()[o.alias].value;
    const Node &p = *o.value->def;
    int at = def_at.at(o.value);
    bool reads = std::find(p.operands.begin(), p.operands.end(), input) !=
                 p.operands.end();
    bool later = last_read.count(input) && last_read.at(input) > at;
    // Views of the input read later count as reads of the input.
    if (auto v = view_last_read.find(input);
        v != view_last_read.end() && v->second > at)
      later = true;
    if (!later && (!reads || index_by_index(p)) &&
        !plan.in_place.count(o.value) && o.value->def->op != Op::Reshape) {
      plan.in_place[o.value] = o.alias;
    } else {
      plan.copy_back.push_back(o.value);
      plain_outputs.insert(o.value);
    }
  }

  // 3. Liveness of owners.
  std::vector<const Value *> owners;
  for (int i = 0; i < end; ++i)
    for (const Value *r : nodes[i]->results) {
      const Value *own = owner(r);
      if (!own->def || plan.in_place.count(own))
        continue; // external storage
      int last = last_read.count(r) ? last_read.at(r) : i;
      if (plain_outputs.count(r))
        last = end;
      auto [it, fresh] =
          plan.live.emplace(own, std::pair{def_at.at(own), last});
      if (fresh)
        owners.push_back(own);
      else
        it->second.second = std::max(it->second.second, last);
    }

  // 4. Placement.
  std::vector<ArenaRequest> reqs;
  for (const Value *v : owners) {
    auto [d, l] = plan.live.at(v);
    reqs.push_back({static_cast<int64_t>(v->type.bytes()), d, l, 0});
    // The arena is never larger than this sum, so checking it suffices.
    if (__builtin_add_overflow(plan.no_reuse_bytes,
                               align(std::max<int64_t>(reqs.back().bytes, 1)),
                               &plan.no_reuse_bytes))
      fail_at_node(*v->def,
                   fmt::format("memory-plan: graph @{}: the buffers up to "
                               "%{} ({}, {} bytes) add up to more than 2^63 "
                               "bytes",
                               g.name, v->name, v->type.str(),
                               reqs.back().bytes));
  }
  plan.arena_bytes = place_in_arena(reqs);
  for (size_t k = 0; k < owners.size(); ++k)
    plan.slots[owners[k]] = {reqs[k].offset, reqs[k].bytes};
  for (auto &[view, own] : plan.views)
    if (auto it = plan.slots.find(own); it != plan.slots.end())
      plan.slots[view] = {it->second.offset,
                          static_cast<int64_t>(view->type.bytes())};
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
      if (auto it = plan.in_place.find(r); it != plan.in_place.end())
        s = fmt::format("in place of %{}", g.inputs()[it->second].value->name);
      else if (auto v = plan.views.find(r);
               v != plan.views.end() && !v->second->def)
        s = fmt::format("view of %{}", v->second->name);
      else if (auto sl = plan.slots.find(r); sl != plan.slots.end())
        s = fmt::format("offset={}, bytes={}", sl->second.offset,
                        sl->second.bytes);
      else
        continue;
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

bool run_memory_plan(Graph &g) {
  (void)plan_memory(g);
  return false;
}

} // namespace kiln
