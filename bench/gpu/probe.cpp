// kiln_gpu_probe (tools/gpu-check.sh, step "env"): loads kiln's CUDA
// backend the way `kiln train` does (driver, then NVRTC and cuBLAS when a
// step is compiled and run), then prints what was actually loaded: the
// driver's version and the device's name, and for libcuda, NVRTC and cuBLAS
// the path of the object in the process (dl_iterate_phdr) and the version
// it reports. Exit 1 with the reason when no CUDA device is usable, or when
// one of the three libraries is not in the process after a step ran: the
// check must not report libraries it did not see.
#include "frontend/compile.h"
#include "frontend/loss.h"
#include "frontend/models.h"
#include "frontend/optim.h"
#include "frontend/random.h"
#include "frontend/trace.h"
#include "runtime/cuda_backend.h"
#include "runtime/cuda_driver.h"

#include <dlfcn.h>
#include <link.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace {

std::vector<std::string> loaded_objects() {
  std::vector<std::string> names;
  dl_iterate_phdr(
      [](dl_phdr_info *info, size_t, void *p) {
        if (info->dlpi_name && *info->dlpi_name)
          static_cast<std::vector<std::string> *>(p)->push_back(
              info->dlpi_name);
        return 0;
      },
      &names);
  return names;
}

// The loaded object whose file name contains any of `keys`, or "".
std::string find_loaded(const std::vector<std::string> &objs,
                        std::initializer_list<const char *> keys) {
  for (const std::string &o : objs) {
    std::string base = o.substr(o.rfind('/') + 1);
    for (const char *k : keys)
      if (base.find(k) != std::string::npos)
        return o;
  }
  return "";
}

} // namespace

int main() {
  using namespace kiln;
  try {
    std::string why;
    auto backend = make_cuda_backend_if_available(&why);
    if (!backend) {
      std::printf("error: no usable CUDA device: %s\n", why.c_str());
      return 1;
    }
    const cuda::Driver &d = *cuda::Driver::get(nullptr);
    CUdevice dev = 0;
    cuda::check(d, d.cuDeviceGet(&dev, 0), "cuDeviceGet");
    char name[256] = {};
    cuda::check(d, d.cuDeviceGetName(name, sizeof name, dev),
                "cuDeviceGetName");
    int major = 0, minor = 0, sms = 0;
    d.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                           dev);
    d.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                           dev);
    d.cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
    std::printf("device: %s (sm_%d%d, %d SMs)\n", name, major, minor, sms);
    std::printf("driver: CUDA driver API %d.%d\n", d.driver_version / 1000,
                d.driver_version % 1000 / 10);

    // One small training step: NVRTC compiles its kernels, cuBLAS runs its
    // GEMMs, so both are in the process afterwards.
    set_default_backend(std::move(backend));
    manual_seed(0);
    auto model = make_mlp();
    optim::SGD opt(model->parameters(), optim::SGDOptions{.lr = 0.05});
    Array x({DType::f32, {8, 784}}), y({DType::i32, {8}});
    for (int64_t i = 0; i < x.numel(); ++i)
      x.set(i, (i % 7) * 0.1);
    for (int64_t i = 0; i < 8; ++i)
      y.set(i, i % 10);
    TrainStep step =
        compile_train_step(*model, nn::cross_entropy, opt, x.type(), y.type());
    double loss = step(x, y);
    std::printf("step: one MLP training step on the device, loss %.6f\n", loss);

    auto objs = loaded_objects();
    int missing = 0;
    std::string p = find_loaded(objs, {"libcuda.so", "cudaemu_driver"});
    std::printf("libcuda: %s (driver version %d)\n",
                p.empty() ? "NOT LOADED" : p.c_str(), d.driver_version);
    missing += p.empty();

    p = find_loaded(objs, {"libnvrtc.so", "cudaemu_nvrtc"});
    if (p.empty()) {
      std::printf("nvrtc: NOT LOADED\n");
      ++missing;
    } else {
      int a = -1, b = -1;
      void *h = dlopen(p.c_str(), RTLD_NOW | RTLD_NOLOAD);
      using Fn = int (*)(int *, int *);
      if (auto f = h ? reinterpret_cast<Fn>(dlsym(h, "nvrtcVersion")) : nullptr)
        f(&a, &b);
      if (a < 0)
        std::printf("nvrtc: %s (no nvrtcVersion: version unknown)\n",
                    p.c_str());
      else
        std::printf("nvrtc: %s (nvrtcVersion %d.%d)\n", p.c_str(), a, b);
    }

    p = find_loaded(objs, {"libcublas.so", "cudaemu_cublas"});
    if (p.empty()) {
      std::printf("cublas: NOT LOADED\n");
      ++missing;
    } else {
      int v[3] = {-1, -1, -1};
      void *h = dlopen(p.c_str(), RTLD_NOW | RTLD_NOLOAD);
      using Fn = int (*)(int, int *); // cublasGetProperty(libraryPropertyType)
      if (auto f =
              h ? reinterpret_cast<Fn>(dlsym(h, "cublasGetProperty")) : nullptr)
        for (int k = 0; k < 3; ++k)
          f(k, &v[k]);
      if (v[0] < 0)
        std::printf("cublas: %s (no cublasGetProperty: version unknown)\n",
                    p.c_str());
      else
        std::printf("cublas: %s (cublasGetProperty %d.%d.%d)\n", p.c_str(),
                    v[0], v[1], v[2]);
    }
    cuda_shutdown();
    if (missing) {
      std::printf("error: %d of libcuda/NVRTC/cuBLAS not in the process after "
                  "a step ran\n",
                  missing);
      return 1;
    }
    return 0;
  } catch (const std::exception &e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
}
