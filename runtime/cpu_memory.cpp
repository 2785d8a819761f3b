#include "runtime/cpu_memory.h"

#include <algorithm>
#include <numeric>

namespace kiln {

size_t plan_arena(std::vector<ArenaRequest> &reqs) {
  auto align = [](size_t n) { return (n + 63) / 64 * 64; };
  std::vector<size_t> order(reqs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return reqs[a].bytes > reqs[b].bytes;
  });
  std::vector<size_t> placed;
  size_t total = 0;
  for (size_t i : order) {
    ArenaRequest &r = reqs[i];
    // Address ranges of placed buffers alive at the same time, by offset.
    std::vector<std::pair<size_t, size_t>> busy;
    for (size_t j : placed) {
      const ArenaRequest &p = reqs[j];
      if (p.first <= r.last && r.first <= p.last)
        busy.push_back({p.offset, p.offset + align(p.bytes)});
    }
    std::sort(busy.begin(), busy.end());
    size_t off = 0, need = align(std::max<size_t>(r.bytes, 1));
    for (auto &[b, e] : busy) {
      if (off + need <= b)
        break;
      off = std::max(off, e);
    }
    r.offset = off;
    total = std::max(total, off + need);
    placed.push_back(i);
  }
  return total;
}

} // namespace kiln
