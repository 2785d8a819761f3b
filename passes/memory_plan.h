// The `memory-plan` analysis: where each intermediate value lives in one
// arena per executable.
#pragma once

#include "ir/graph.h"
#include "ir/printer.h"

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace kiln {

inline constexpr int64_t kArenaAlignment = 64;

struct MemoryPlan {
  struct Slot {
    int64_t offset, bytes;
  };
  // Every value a top-level node produces, except the outputs written in
  // place into their input. A reshape result shares its operand's slot
  // (same offset) and is listed in `views`.
  std::unordered_map<const Value *, Slot> slots;
  int64_t arena_bytes = 0;    // peak: the arena's size
  int64_t no_reuse_bytes = 0; // every slot aligned and laid end to end
  // Outputs aliasing a param/state input that are written straight into
  // that input's buffer: value -> input index.
  std::unordered_map<const Value *, int> in_place;
  // Aliasing outputs that could not be written in place (the input is read
  // after the value is produced, or the producer is not elementwise): they
  // get a slot and the runtime copies them into the input at the end.
  std::vector<const Value *> copy_back;
  // reshape result -> the value whose storage it shares (a slot owner, or
  // a graph input: then the reshape is a view of an external buffer).
  std::unordered_map<const Value *, const Value *> views;
  // Live range of each slot owner: [first, last] top-level node indices
  // (a non-aliased graph output lives to the end: index nodes().size()).
  std::unordered_map<const Value *, std::pair<int, int>> live;
};

// One buffer to place: `bytes` live over node indices [first, last].
struct ArenaRequest {
  int64_t bytes = 0;
  int first = 0, last = 0;
  int64_t offset = 0; // set by place_in_arena
};

// The placement both memory-plan and the CPU runtime use: largest first,
// each at the lowest 64-byte-aligned offset free over its whole interval
// (intervals are closed). Returns the arena's size in bytes.
// `visited` (optional) receives how many placed requests the placement
// looked at: only those alive together with each new one, so a long chain
// of short-lived buffers costs O(n log n), not O(n^2).
int64_t place_in_arena(std::vector<ArenaRequest> &reqs,
                       int64_t *visited = nullptr);

// Liveness-based buffer reuse: intervals from definition to last use
// (closed, so a node never writes over its own operands); largest first,
// each at the lowest 64-byte aligned offset free for its whole interval.
// Graph inputs are bound externally and never in the arena.
MemoryPlan plan_memory(const Graph &g);

// "memory-plan: arena 1.2 MiB (1234 bytes), 3.4 MiB without reuse, ..."
std::string memory_plan_summary(const MemoryPlan &plan);

// Printer options annotating each top-level node with its results' slots:
// `offset=128, bytes=4096`, `in place of %w1`, `view of %x`.
PrintOptions memory_plan_print_options(const MemoryPlan &plan, const Graph &g);

// The pass: runs the analysis, leaves the graph as it is (false). The pass
// manager prints the plan as annotations after it.
bool run_memory_plan(Graph &g);

} // namespace kiln
