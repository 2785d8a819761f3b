#include "frontend/random.h"

#include <atomic>

namespace kiln {

double Generator::uniform(double lo, double hi) {
  std::uniform_real_distribution<double> d(lo, hi);
  return d(engine_);
}

namespace {
// torch's default seed is arbitrary too; any fixed value keeps runs
// reproducible without a call to manual_seed.
constexpr uint64_t kDefaultSeed = 0x5eed;
std::atomic<uint64_t> g_seed{kDefaultSeed};
std::atomic<uint64_t> g_offset{0};
} // namespace

Generator &default_generator() {
  static Generator g(kDefaultSeed);
  return g;
}

void manual_seed(uint64_t seed) {
  default_generator().manual_seed(seed);
  g_seed = seed;
  g_offset = 0;
}

uint64_t graph_seed() { return g_seed; }
uint64_t graph_offset() { return g_offset; }
void advance_graph_offset(uint64_t draws) { g_offset += draws; }

uint64_t splitmix64(uint64_t &state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

} // namespace kiln
