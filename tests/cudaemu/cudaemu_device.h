// The CUDA built-ins for kernels compiled by the emulated NVRTC
// (tests/cudaemu/emu_nvrtc.cpp): the generated CUDA C is compiled unchanged
// by the host C++ compiler with `-include` of this header. Every CUDA thread
// is a fiber of the emulated driver (emu_driver.cpp) and one block runs on
// one OS thread, so __shared__ is a function-local thread_local (per block;
// not zeroed between blocks, as on a GPU). __syncthreads and the warp
// shuffles call back into the driver, which checks that every thread (lane)
// takes part. A test harness, not a CUDA implementation.
#pragma once

#include "cudaemu_api.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

// Set by the driver when it loads the image (one definition per image: the
// header is included once into each translation unit, one per image).
extern "C" __attribute__((visibility("default"))) const kiln_emu_api *kiln_emu;
const kiln_emu_api *kiln_emu = nullptr;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __shared__ static thread_local
#define __constant__ static

#define threadIdx (kiln_emu->current()->threadIdx)
#define blockIdx (kiln_emu->current()->blockIdx)
#define blockDim (kiln_emu->current()->blockDim)
#define gridDim (kiln_emu->current()->gridDim)
#define warpSize 32

inline void __syncthreads() { kiln_emu->syncthreads(); }

template <typename T>
inline T kiln_emu_shfl(unsigned mask, T v, int arg, int kind, int width) {
  static_assert(sizeof(T) <= 8, "kiln cudaemu: shuffle of more than 8 bytes");
  unsigned long long bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = kiln_emu->shfl(mask, bits, arg, kind, width);
  T r;
  std::memcpy(&r, &bits, sizeof(T));
  return r;
}
template <typename T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  return kiln_emu_shfl(mask, v, src, kiln_emu_shfl_idx, width);
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned d, int width = 32) {
  return kiln_emu_shfl(mask, v, static_cast<int>(d), kiln_emu_shfl_up, width);
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned d, int width = 32) {
  return kiln_emu_shfl(mask, v, static_cast<int>(d), kiln_emu_shfl_down, width);
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int m, int width = 32) {
  return kiln_emu_shfl(mask, v, m, kiln_emu_shfl_xor, width);
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
  return kiln_emu->ballot(mask, pred);
}
inline int __all_sync(unsigned mask, int pred) {
  return kiln_emu->ballot(mask, pred) == kiln_emu->ballot(mask, 1);
}
inline int __any_sync(unsigned mask, int pred) {
  return kiln_emu->ballot(mask, pred) != 0;
}

// __syncwarp: a rendezvous of the lanes of the mask (a vote whose result
// is unused). Fences order nothing here: fibers switch only at barriers,
// shuffles and votes, and blocks run one after another.
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  (void)kiln_emu->ballot(mask, 0);
}
inline void __threadfence() {}
inline void __threadfence_block() {}

// Atomics: a plain read-modify-write is atomic, since no other fiber or
// block runs between the read and the write (see above).
template <typename T> inline T atomicAdd(T *p, T v) {
  T old = *p;
  *p = old + v;
  return old;
}
template <typename T> inline T atomicSub(T *p, T v) {
  T old = *p;
  *p = old - v;
  return old;
}
template <typename T> inline T atomicMax(T *p, T v) {
  T old = *p;
  *p = old < v ? v : old;
  return old;
}
template <typename T> inline T atomicMin(T *p, T v) {
  T old = *p;
  *p = v < old ? v : old;
  return old;
}
template <typename T> inline T atomicExch(T *p, T v) {
  T old = *p;
  *p = v;
  return old;
}
template <typename T> inline T atomicCAS(T *p, T cmp, T v) {
  T old = *p;
  if (old == cmp)
    *p = v;
  return old;
}
template <typename T> inline T atomicAnd(T *p, T v) {
  T old = *p;
  *p = old & v;
  return old;
}
template <typename T> inline T atomicOr(T *p, T v) {
  T old = *p;
  *p = old | v;
  return old;
}
template <typename T> inline T atomicXor(T *p, T v) {
  T old = *p;
  *p = old ^ v;
  return old;
}

inline float __int_as_float(int x) {
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}
inline int __float_as_int(float x) {
  int i;
  std::memcpy(&i, &x, 4);
  return i;
}
inline double __longlong_as_double(long long x) {
  double d;
  std::memcpy(&d, &x, 8);
  return d;
}
inline long long __double_as_longlong(double x) {
  long long i;
  std::memcpy(&i, &x, 8);
  return i;
}
template <typename T> inline T __ldg(const T *p) { return *p; }
inline float __fdividef(float a, float b) { return a / b; }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
using std::max;
using std::min;

// Kernel registration: emu_nvrtc.cpp appends KILN_EMU_KERNELS(...) naming
// every __global__ function of the source.
template <typename... A, size_t... I>
inline void kiln_emu_call(void (*f)(A...), void **p,
                          std::index_sequence<I...>) {
  f(*static_cast<std::remove_cv_t<std::remove_reference_t<A>> *>(p[I])...);
}
template <typename... A> void kiln_emu_invoke(void *fn, void **p) {
  kiln_emu_call(reinterpret_cast<void (*)(A...)>(fn), p,
                std::index_sequence_for<A...>{});
}
template <typename... A>
inline kiln_emu_kernel_info kiln_emu_info(const char *name, void (*f)(A...)) {
  static_assert(sizeof...(A) <= KILN_EMU_MAX_PARAMS, "too many parameters");
  kiln_emu_kernel_info k{};
  k.name = name;
  k.nparams = static_cast<int>(sizeof...(A));
  size_t sizes[] = {sizeof(A)..., 0};
  for (int i = 0; i < k.nparams; ++i)
    k.sizes[i] = sizes[i];
  k.fn = reinterpret_cast<void *>(f);
  k.invoke = &kiln_emu_invoke<A...>;
  return k;
}
#define KILN_EMU_KERNEL(name) kiln_emu_info(#name, &name),
#define KILN_EMU_KERNELS(...)                                                  \
  extern "C" __attribute__((visibility("default"))) int kiln_emu_kernels(      \
      const kiln_emu_kernel_info **out) {                                      \
    static const kiln_emu_kernel_info ks[] = {__VA_ARGS__{}};                  \
    *out = ks;                                                                 \
    return static_cast<int>(sizeof ks / sizeof ks[0]) - 1;                     \
  }
