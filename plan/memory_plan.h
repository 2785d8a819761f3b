// The buffer assignment: where each value of a graph lives, computed once per
// executable by the lowering (plan/plan.h) and printed by the `memory-plan`
// pass.
#pragma once

#include "ir/graph.h"
#include "ir/printer.h"
#include "plan/kernel_plan.h"

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace kiln {

inline constexpr int64_t kArenaAlignment = 64;

// Where a value's bytes are: a graph input (bound per run), the arena (one
// block per executable), a non-aliased graph output's own buffer, a
// constant (filled once when the plan is loaded) or a staging buffer (for a
// copy from one input into another).
enum class Space : uint8_t { input, arena, output, constant, staging };

struct BufferRef {
  Space space = Space::arena;
  int index = 0;      // input, output, constant or staging number
  int64_t offset = 0; // bytes
  bool operator==(const BufferRef &) const = default;
};

// The buffer assignment of one graph (the rules are at the top of
// memory_plan.cpp).
struct MemoryPlan {
  struct Slot {
    int64_t offset, bytes;
  };
  // Where every value lives: inputs, views, constants, outputs, arena.
  std::unordered_map<const Value *, BufferRef> where;
  // Every value placed in the arena (and views of one): offset and bytes.
  std::unordered_map<const Value *, Slot> slots;
  int64_t arena_bytes = 0;    // peak: the arena's size
  int64_t no_reuse_bytes = 0; // every slot aligned and laid end to end
  // Outputs aliasing a param/state input that are written straight into
  // that input's buffer: value -> input index.
  std::unordered_map<const Value *, int> in_place;
  // Aliasing outputs that could not be written in place (the input is read
  // after the value is produced, or the producer reads it at other
  // indices): they get a slot and are copied into the input at the end.
  std::vector<const Value *> copy_back;
  // View -> the value whose storage it shares (a slot owner, a graph input,
  // a constant or an output). Views are reshapes and the folded transposes.
  std::unordered_map<const Value *, const Value *> views;
  // Transposes of the last two axes read only by matmuls: views that the
  // GEMMs read through their transpose flag.
  std::unordered_set<const Node *> folded;
  // Constant values, by constant buffer index.
  std::vector<const Value *> constants;
  // Live range of each arena slot owner: [first, last] top-level node
  // indices (a value read by the end-of-run copies lives to nodes().size()).
  std::unordered_map<const Value *, std::pair<int, int>> live;
  // Loop plans of the fused nodes asked about (shared with the lowering).
  std::unordered_map<const Node *, std::shared_ptr<const KernelPlan>>
      kernel_plans;
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

} // namespace kiln
