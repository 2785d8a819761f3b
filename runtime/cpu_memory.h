// The CPU backend's private memory plan: offsets in one arena for buffers
// with known lifetimes (step intervals), so that buffers whose lifetimes do
// not overlap share bytes. Used until passes/memory_plan.h is available.
#pragma once

#include <cstddef>
#include <vector>

namespace kiln {

struct ArenaRequest {
  size_t bytes = 0;
  int first = 0, last = 0; // live over steps [first, last]
  size_t offset = 0;       // set by plan_arena
};

// Places every request (largest first, at the lowest 64-byte-aligned offset
// free over its lifetime) and returns the arena size in bytes.
size_t plan_arena(std::vector<ArenaRequest> &reqs);

} // namespace kiln
