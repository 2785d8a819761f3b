// The interface between the emulated CUDA driver (emu_driver.cpp) and the
// kernels that the emulated NVRTC (emu_nvrtc.cpp) compiles with the host C++
// compiler under cudaemu_device.h. Plain C structs: the kernel shared object
// and the driver are separate images that share only this layout.
#pragma once

#include <cstddef>

#define KILN_CUDAEMU_ABI 1

struct kiln_emu_dim3 {
  unsigned x, y, z;
};

// The CUDA built-in variables of the calling thread (fiber).
struct kiln_emu_builtins {
  kiln_emu_dim3 threadIdx, blockIdx, blockDim, gridDim;
};

// Warp shuffle kinds (__shfl_sync, __shfl_up_sync, __shfl_down_sync,
// __shfl_xor_sync).
enum {
  kiln_emu_shfl_idx,
  kiln_emu_shfl_up,
  kiln_emu_shfl_down,
  kiln_emu_shfl_xor
};

// Installed by the driver into every loaded kernel image (its `kiln_emu`
// pointer) before any kernel runs.
struct kiln_emu_api {
  int abi;
  const kiln_emu_builtins *(*current)();
  void (*syncthreads)();
  // Returns the value of the source lane; `bits` holds the caller's value.
  unsigned long long (*shfl)(unsigned mask, unsigned long long bits, int arg,
                             int kind, int width);
  // Vote functions over the lanes of the mask.
  unsigned (*ballot)(unsigned mask, int pred);
};

// One __global__ function of an image, with what cuLaunchKernel needs to
// call it from a void** parameter array (sizes: to copy the parameters when
// a launch is captured into a graph).
#define KILN_EMU_MAX_PARAMS 64
struct kiln_emu_kernel_info {
  const char *name;
  int nparams;
  size_t sizes[KILN_EMU_MAX_PARAMS];
  void *fn;
  void (*invoke)(void *fn, void **params);
};
