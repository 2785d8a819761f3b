// Host-side random numbers for the frontend: the generator that initializes
// parameters, and the (seed, offset) pair that feeds in-graph random ops
// (dropout). `manual_seed(s)` resets both, as torch.manual_seed does, so a
// run is reproducible from one number.
#pragma once

#include <cstdint>
#include <random>

namespace kiln {

// A seeded stream of uniform numbers for initialization. Not thread-safe: use
// one per thread, or the default one from one thread.
class Generator {
public:
  explicit Generator(uint64_t seed = 0) : engine_(seed) {}
  void manual_seed(uint64_t seed) { engine_.seed(seed); }
  // Uniform in [lo, hi).
  double uniform(double lo, double hi);

private:
  std::mt19937_64 engine_;
};

// The process-wide generator used when a layer is given none.
Generator &default_generator();

// splitmix64: a small, well-mixed generator whose output is the same on every
// platform, unlike std::shuffle with std:: distributions (the DataLoader's
// shuffle and split_indices use it). Advances `state`.
uint64_t splitmix64(uint64_t &state);

// Reseeds the default generator and the in-graph random stream: the seed
// input of later steps becomes `seed` and their offset counter restarts at 0.
void manual_seed(uint64_t seed);

// The in-graph random stream. Every realized graph that draws random numbers
// takes `seed` and `offset` as i64[] data inputs; its k-th draw uses
// counter offset + k, and after each run the offset advances by the number of
// draws, so a replayed step never repeats a mask.
uint64_t graph_seed();
uint64_t graph_offset();
void advance_graph_offset(uint64_t draws);

} // namespace kiln
