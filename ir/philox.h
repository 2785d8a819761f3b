// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
// 3", SC'11), the counter-based generator cuRAND and JAX use. Element i of a
// random_uniform draw with (seed, offset) is the first 32-bit word of
// philox(key = seed, counter = (i_lo, i_hi, offset_lo, offset_hi)), mapped to
// [0, 1) with 24 bits. Plain C so the CUDA and LLVM emitters can mirror it.
#pragma once

#include <cstdint>

namespace kiln {

inline uint32_t philox4x32_10_first(uint64_t seed, uint64_t offset,
                                    uint64_t index) {
  uint32_t c0 = static_cast<uint32_t>(index),
           c1 = static_cast<uint32_t>(index >> 32),
           c2 = static_cast<uint32_t>(offset),
           c3 = static_cast<uint32_t>(offset >> 32);
  uint32_t k0 = static_cast<uint32_t>(seed),
           k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    uint32_t n1 = static_cast<uint32_t>(p1);
    uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    uint32_t n3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c0;
}

// Uniform in [0, 1) with 24 random bits (exactly representable in f32).
inline float philox_uniform(uint64_t seed, uint64_t offset, uint64_t index) {
  return static_cast<float>(philox4x32_10_first(seed, offset, index) >> 8) *
         (1.0f / 16777216.0f);
}

} // namespace kiln
