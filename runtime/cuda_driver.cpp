#include "runtime/cuda_driver.h"

#include "ir/error.h"

#include <cstdlib>
#include <dlfcn.h>
#include <mutex>

namespace kiln::cuda {

namespace {

struct Loaded {
  Driver d;
  bool ok = false;
  std::string reason;
};

// "CUDA_ERROR_X", or the number when the driver does not know it.
std::string error_name(const Driver &d, CUresult r) {
  const char *name = nullptr;
  if (d.cuGetErrorName(r, &name) == CUDA_SUCCESS && name)
    return name;
  return fmt::format("unknown CUDA error {}", static_cast<int>(r));
}

Loaded load() {
  Loaded l;
  // KILN_CUDA_DRIVER names the driver library explicitly (the emulated
  // device of tests/cudaemu, or a driver outside the loader's path).
  const char *env = std::getenv("KILN_CUDA_DRIVER");
  std::string path = env && *env ? env : "libcuda.so.1";
  void *lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    l.reason = fmt::format("no CUDA driver ({} cannot be loaded)", path);
    return l;
  }
  auto init = reinterpret_cast<decltype(&::cuInit)>(dlsym(lib, "cuInit"));
  auto gpa = reinterpret_cast<decltype(&::cuGetProcAddress_v2)>(
      dlsym(lib, "cuGetProcAddress_v2"));
  if (!init || !gpa) {
    l.reason = "the CUDA driver is too old (no cuGetProcAddress_v2)";
    return l;
  }
  CUresult r = init(0);
  if (r != CUDA_SUCCESS) {
    // cuGetErrorName works before a successful cuInit.
    auto get_name = reinterpret_cast<decltype(&::cuGetErrorName)>(
        dlsym(lib, "cuGetErrorName"));
    const char *name = nullptr;
    if (!get_name || get_name(r, &name) != CUDA_SUCCESS || !name)
      name = nullptr;
    l.reason = name ? fmt::format("cuInit failed: {} (no usable GPU or "
                                  "driver)",
                                  name)
                    : fmt::format("cuInit failed with unknown CUDA error {} "
                                  "(no usable GPU or driver)",
                                  static_cast<int>(r));
    return l;
  }
  Driver &d = l.d;
  bool ok = true;
  auto resolve = [&](auto &fn, const char *name) {
    void *p = nullptr;
    CUdriverProcAddressQueryResult q{};
    CUresult s = gpa(name, &p, CUDA_VERSION, CU_GET_PROC_ADDRESS_DEFAULT, &q);
    if (s != CUDA_SUCCESS || !p || q != CU_GET_PROC_ADDRESS_SUCCESS) {
      if (ok)
        l.reason = fmt::format("the CUDA driver lacks {} for CUDA {}", name,
                               CUDA_VERSION);
      ok = false;
      return;
    }
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
  };
#define KILN_CU_RESOLVE(name) resolve(d.name, #name);
  KILN_CU_RESOLVE(cuGetErrorString)
  KILN_CU_RESOLVE(cuGetErrorName)
  KILN_CU_RESOLVE(cuDriverGetVersion)
  KILN_CU_RESOLVE(cuDeviceGetCount)
  KILN_CU_RESOLVE(cuDeviceGet)
  KILN_CU_RESOLVE(cuDeviceGetName)
  KILN_CU_RESOLVE(cuDeviceGetAttribute)
  KILN_CU_RESOLVE(cuDevicePrimaryCtxRetain)
  KILN_CU_RESOLVE(cuDevicePrimaryCtxRelease)
  KILN_CU_RESOLVE(cuCtxSetCurrent)
  KILN_CU_RESOLVE(cuCtxSynchronize)
  KILN_CU_RESOLVE(cuMemAlloc)
  KILN_CU_RESOLVE(cuMemFree)
  KILN_CU_RESOLVE(cuMemAllocHost)
  KILN_CU_RESOLVE(cuMemFreeHost)
  KILN_CU_RESOLVE(cuMemcpyHtoD)
  KILN_CU_RESOLVE(cuMemcpyDtoH)
  KILN_CU_RESOLVE(cuMemcpyHtoDAsync)
  KILN_CU_RESOLVE(cuMemcpyDtoHAsync)
  KILN_CU_RESOLVE(cuMemcpyDtoDAsync)
  KILN_CU_RESOLVE(cuMemsetD8Async)
  KILN_CU_RESOLVE(cuModuleLoadData)
  KILN_CU_RESOLVE(cuModuleUnload)
  KILN_CU_RESOLVE(cuModuleGetFunction)
  KILN_CU_RESOLVE(cuLaunchKernel)
  KILN_CU_RESOLVE(cuStreamCreate)
  KILN_CU_RESOLVE(cuStreamDestroy)
  KILN_CU_RESOLVE(cuStreamSynchronize)
  KILN_CU_RESOLVE(cuStreamBeginCapture)
  KILN_CU_RESOLVE(cuStreamEndCapture)
  KILN_CU_RESOLVE(cuGraphInstantiateWithFlags)
  KILN_CU_RESOLVE(cuGraphLaunch)
  KILN_CU_RESOLVE(cuGraphExecDestroy)
  KILN_CU_RESOLVE(cuGraphDestroy)
  KILN_CU_RESOLVE(cuEventCreate)
  KILN_CU_RESOLVE(cuEventDestroy)
  KILN_CU_RESOLVE(cuEventRecord)
  KILN_CU_RESOLVE(cuEventSynchronize)
  KILN_CU_RESOLVE(cuEventElapsedTime)
#undef KILN_CU_RESOLVE
  if (!ok)
    return l;
  if (CUresult v = d.cuDriverGetVersion(&d.driver_version); v != CUDA_SUCCESS) {
    l.reason = fmt::format("cuDriverGetVersion failed: {}", error_name(d, v));
    return l;
  }
  if (d.driver_version < 13000) {
    l.reason =
        fmt::format("the CUDA driver supports CUDA {}.{}; kiln's "
                    "kernels need 13.0",
                    d.driver_version / 1000, d.driver_version % 1000 / 10);
    return l;
  }
  int count = 0;
  if (CUresult c = d.cuDeviceGetCount(&count); c != CUDA_SUCCESS) {
    l.reason = fmt::format("cuDeviceGetCount failed: {}", error_name(d, c));
    return l;
  }
  if (count == 0) {
    l.reason = "the CUDA driver reports no device";
    return l;
  }
  l.ok = true;
  return l;
}

} // namespace

const Driver *Driver::get(std::string *reason) {
  static Loaded l = load();
  if (!l.ok) {
    if (reason)
      *reason = l.reason;
    return nullptr;
  }
  return &l.d;
}

void check(const Driver &d, CUresult r, const char *what) {
  if (r == CUDA_SUCCESS)
    return;
  const char *msg = nullptr;
  if (d.cuGetErrorString(r, &msg) != CUDA_SUCCESS || !msg)
    fail("cuda: {}: {}", what, error_name(d, r));
  fail("cuda: {}: {} ({})", what, error_name(d, r), msg);
}

} // namespace kiln::cuda
