#include "ir/builder.h"
#include "ir/printer.h"
#include "plan/memory_plan.h"
#include "test_util.h"

#include "../support/random_graph.h"
#include "mlp_step.h"

#include <numeric>
#include <random>

namespace kiln {
namespace {

const Value *storage(const MemoryPlan &p, const Value *v) {
  auto it = p.views.find(v);
  return it == p.views.end() ? v : it->second;
}

// Exhaustive: every pair of slot owners whose live ranges overlap occupies
// disjoint bytes; every slot is aligned and inside the arena.
void check_plan(const Graph &g, const MemoryPlan &p) {
  std::vector<const Value *> owners;
  for (auto &[v, s] : p.slots) {
    EXPECT_EQ(s.offset % kArenaAlignment, 0);
    EXPECT_LE(s.offset + s.bytes, p.arena_bytes);
    if (storage(p, v) == v)
      owners.push_back(v);
  }
  for (size_t i = 0; i < owners.size(); ++i)
    for (size_t j = i + 1; j < owners.size(); ++j) {
      auto [ad, al] = p.live.at(owners[i]);
      auto [bd, bl] = p.live.at(owners[j]);
      if (!(ad <= bl && bd <= al))
        continue;
      auto a = p.slots.at(owners[i]), b = p.slots.at(owners[j]);
      EXPECT_TRUE(a.offset + a.bytes <= b.offset ||
                  b.offset + b.bytes <= a.offset)
          << "overlap in " << g.name;
    }
  // Every value read at node k by a node is live at k.
  int k = 0;
  for (auto &n : g.nodes()) {
    for (const Value *o : n->operands) {
      const Value *s = storage(p, o);
      if (auto it = p.live.find(s); it != p.live.end()) {
        EXPECT_LE(it->second.first, k);
        EXPECT_GE(it->second.second, k);
      }
    }
    ++k;
  }
}

TEST(MemoryPlan, ReusesDeadBuffers) {
  Graph g;
  Builder b(g);
  Value *x = g.add_input("x", {DType::f32, {256}});
  Value *v = x;
  for (int i = 0; i < 6; ++i)
    v = b.exp(v); // a chain: two buffers alternate
  g.add_output(v);
  MemoryPlan p = plan_memory(g);
  check_plan(g, p);
  // Five intermediates; the last exp writes straight into its output buffer.
  EXPECT_EQ(p.no_reuse_bytes, 5 * 1024);
  EXPECT_EQ(p.where.at(v).space, Space::output);
  EXPECT_EQ(p.arena_bytes, 2 * 1024);
  EXPECT_EQ(p.slots.count(x), 0u) << "inputs are bound externally";
}

TEST(MemoryPlan, InPlaceUpdatesAndReshapeViews) {
  Graph g;
  Builder b(g);
  Value *w = g.add_input("w", {DType::f32, {4, 4}}, InputKind::param);
  Value *x = g.add_input("x", {DType::f32, {4, 4}});
  Value *m = b.matmul(x, w);
  Value *r = b.reshape(m, {16});
  Value *s = b.sum(r);
  Value *nw = b.sub(w, b.mul(m, 0.1));
  g.add_output(s);
  g.add_output(nw, 0);
  MemoryPlan p = plan_memory(g);
  check_plan(g, p);
  EXPECT_EQ(p.in_place.count(nw), 1u);
  EXPECT_EQ(p.slots.count(nw), 0u);
  EXPECT_EQ(p.views.at(r), m);
  EXPECT_EQ(p.slots.at(r).offset, p.slots.at(m).offset);
  std::string text = print(g, memory_plan_print_options(p, g));
  EXPECT_NE(text.find("in place of %w"), std::string::npos) << text;
  EXPECT_NE(text.find("offset=0, bytes=64"), std::string::npos) << text;
}

TEST(MemoryPlan, InPlaceRefusedWhenTheInputIsReadLater) {
  Graph g;
  Builder b(g);
  Value *w = g.add_input("w", {DType::f32, {4}}, InputKind::param);
  Value *nw = b.neg(w);
  Value *late = b.exp(w); // reads the old w after nw is produced
  g.add_output(late);
  g.add_output(nw, 0);
  MemoryPlan p = plan_memory(g);
  check_plan(g, p);
  EXPECT_EQ(p.in_place.count(nw), 0u);
  ASSERT_EQ(p.copy_back.size(), 1u);
  EXPECT_EQ(p.slots.count(nw), 1u);
}

TEST(MemoryPlan, RandomGraphsAndTheMlpStepNeverOverlap) {
  for (uint64_t seed = 0; seed < 100; ++seed) {
    auto g = testing::random_graph(seed);
    check_plan(*g, plan_memory(*g));
    testing::run_passes(*g, "fuse-elementwise");
    check_plan(*g, plan_memory(*g));
  }
  auto g = testing::mlp_step();
  for (const char *stage :
       {"", "canonicalize,cse,dce", "fuse-elementwise,fuse-optimizer,dce"}) {
    testing::run_passes(*g, stage);
    MemoryPlan p = plan_memory(*g);
    check_plan(*g, p);
    EXPECT_LT(p.arena_bytes, p.no_reuse_bytes) << stage;
  }
}

} // namespace
} // namespace kiln

namespace kiln {
namespace {

// The first-fit placement as it was written before the live-interval index:
// every placed request compared with the new one (quadratic). The indexed
// place_in_arena must give exactly the same offsets.
int64_t place_by_scan(std::vector<ArenaRequest> &reqs) {
  auto align = [](int64_t b) { return (b + 63) / 64 * 64; };
  std::vector<size_t> order(reqs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return reqs[a].bytes > reqs[b].bytes;
  });
  std::vector<size_t> placed;
  int64_t total = 0;
  for (size_t i : order) {
    ArenaRequest &r = reqs[i];
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (size_t j : placed) {
      const ArenaRequest &p = reqs[j];
      if (p.first <= r.last && r.first <= p.last)
        busy.emplace_back(p.offset,
                          p.offset + align(std::max<int64_t>(p.bytes, 1)));
    }
    std::sort(busy.begin(), busy.end());
    int64_t off = 0, need = align(std::max<int64_t>(r.bytes, 1));
    for (auto [b, e] : busy) {
      if (need <= b - off)
        break;
      off = std::max(off, e);
    }
    r.offset = off;
    total = std::max(total, off + need);
    placed.push_back(i);
  }
  return total;
}

TEST(PlaceInArena, SameOffsetsAsTheScanOnRandomRequests) {
  std::mt19937_64 rng(5);
  for (int round = 0; round < 200; ++round) {
    int n = 1 + static_cast<int>(rng() % 300);
    int times = 1 + static_cast<int>(rng() % 400);
    std::vector<ArenaRequest> reqs;
    for (int i = 0; i < n; ++i) {
      int a = static_cast<int>(rng() % times);
      int len = rng() % 4 == 0 ? static_cast<int>(rng() % times)
                               : static_cast<int>(rng() % 5);
      int b = std::min(times - 1, a + len);
      // Few distinct sizes, so that ties in the size order matter too.
      int64_t bytes = static_cast<int64_t>(rng() % 6) * 96 + (rng() % 3);
      reqs.push_back({bytes, a, b, 0});
    }
    auto want = reqs;
    int64_t want_total = place_by_scan(want);
    int64_t total = place_in_arena(reqs);
    ASSERT_EQ(total, want_total) << "round " << round;
    for (size_t i = 0; i < reqs.size(); ++i)
      ASSERT_EQ(reqs[i].offset, want[i].offset)
          << "round " << round << " request " << i;
  }
}

// Short-lived buffers (a long chain): the placement looks only at the
// buffers alive together with each new one (here at most 2), where the scan
// compared every pair (n^2 / 2). Counted, not timed, so it cannot flake.
TEST(PlaceInArena, ChainOfShortLivedBuffersVisitsOnlyNeighbours) {
  constexpr int n = 20000;
  std::vector<ArenaRequest> reqs;
  for (int i = 0; i < n; ++i)
    reqs.push_back({4096, i, i + 1, 0});
  int64_t visited = -1;
  int64_t total = place_in_arena(reqs, &visited);
  EXPECT_LE(visited, 2 * n);
  EXPECT_EQ(total, 2 * 4096); // two buffers alternate
}

} // namespace
} // namespace kiln
