// The CUDA driver API, loaded at run time: dlopen("libcuda.so.1"), cuInit,
// then every entry point through cuGetProcAddress (cuda.h #defines the
// versioned names, e.g. cuMemAlloc -> cuMemAlloc_v2, so plain dlsym of the
// bare name would find an older ABI). Nothing links the driver or its stub,
// so binaries start and run on machines without a GPU.
#pragma once

#include <cuda.h>

#include <string>

namespace kiln::cuda {

struct Driver {
#define KILN_CU_FN(name) decltype(&::name) name = nullptr;
  KILN_CU_FN(cuGetErrorString)
  KILN_CU_FN(cuGetErrorName)
  KILN_CU_FN(cuDriverGetVersion)
  KILN_CU_FN(cuDeviceGetCount)
  KILN_CU_FN(cuDeviceGet)
  KILN_CU_FN(cuDeviceGetName)
  KILN_CU_FN(cuDeviceGetAttribute)
  KILN_CU_FN(cuDevicePrimaryCtxRetain)
  KILN_CU_FN(cuDevicePrimaryCtxRelease)
  KILN_CU_FN(cuCtxSetCurrent)
  KILN_CU_FN(cuCtxSynchronize)
  KILN_CU_FN(cuMemAlloc)
  KILN_CU_FN(cuMemFree)
  KILN_CU_FN(cuMemAllocHost)
  KILN_CU_FN(cuMemFreeHost)
  KILN_CU_FN(cuMemcpyHtoD)
  KILN_CU_FN(cuMemcpyDtoH)
  KILN_CU_FN(cuMemcpyHtoDAsync)
  KILN_CU_FN(cuMemcpyDtoHAsync)
  KILN_CU_FN(cuMemcpyDtoDAsync)
  KILN_CU_FN(cuMemsetD8Async)
  KILN_CU_FN(cuModuleLoadData)
  KILN_CU_FN(cuModuleUnload)
  KILN_CU_FN(cuModuleGetFunction)
  KILN_CU_FN(cuLaunchKernel)
  KILN_CU_FN(cuStreamCreate)
  KILN_CU_FN(cuStreamDestroy)
  KILN_CU_FN(cuStreamSynchronize)
  KILN_CU_FN(cuStreamBeginCapture)
  KILN_CU_FN(cuStreamEndCapture)
  KILN_CU_FN(cuGraphInstantiateWithFlags)
  KILN_CU_FN(cuGraphLaunch)
  KILN_CU_FN(cuGraphExecDestroy)
  KILN_CU_FN(cuGraphDestroy)
  KILN_CU_FN(cuEventCreate)
  KILN_CU_FN(cuEventDestroy)
  KILN_CU_FN(cuEventRecord)
  KILN_CU_FN(cuEventSynchronize)
  KILN_CU_FN(cuEventElapsedTime)
#undef KILN_CU_FN
  int driver_version = 0;

  // The process-wide driver with at least one device, or nullptr with a
  // one-line reason (no driver library, cuInit failed, no device).
  static const Driver *get(std::string *reason);
};

// Throws kiln::Error "cuda: <what>: CUDA_ERROR_X (message)" unless ok.
void check(const Driver &d, CUresult r, const char *what);

} // namespace kiln::cuda
