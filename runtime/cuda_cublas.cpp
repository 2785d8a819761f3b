#include "runtime/cuda_cublas.h"

#include "ir/error.h"

#include <cublas_v2.h>
#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <vector>

namespace kiln::cuda {

namespace {

struct Lib {
  void *lib = nullptr;
  std::string error;
  decltype(&::cublasCreate_v2) create = nullptr;
  decltype(&::cublasDestroy_v2) destroy = nullptr;
  decltype(&::cublasSetStream_v2) set_stream = nullptr;
  decltype(&::cublasSetMathMode) set_math_mode = nullptr;
  decltype(&::cublasSetWorkspace_v2) set_workspace = nullptr;
  decltype(&::cublasSgemmStridedBatched) sgemm = nullptr;
  decltype(&::cublasDgemmStridedBatched) dgemm = nullptr;
};

const Lib &lib() {
  static Lib l;
  static std::once_flag once;
  std::call_once(once, [] {
    // KILN_CUBLAS names the library explicitly (the emulated cuBLAS of
    // tests/cudaemu, or one outside the loader's path): only that one.
    std::vector<std::string> names = {"libcublas.so.13", "libcublas.so"};
    for (const char *var : {"CUDA_HOME", "CUDA_PATH"})
      if (const char *h = std::getenv(var); h && *h)
        names.push_back(std::string(h) + "/lib64/libcublas.so.13");
    names.push_back("/usr/local/cuda/lib64/libcublas.so.13");
    const char *explicit_path = std::getenv("KILN_CUBLAS");
    if (explicit_path && *explicit_path)
      names = {explicit_path};
    for (const std::string &n : names)
      if ((l.lib = dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL)))
        break;
    if (!l.lib) {
      l.error = fmt::format("cuBLAS not found ({})", names.front());
      return;
    }
    auto sym = [&](auto &f, const char *name) {
      f = reinterpret_cast<std::remove_reference_t<decltype(f)>>(
          dlsym(l.lib, name));
      if (!f && l.error.empty())
        l.error = std::string("cuBLAS lacks ") + name;
    };
    sym(l.create, "cublasCreate_v2");
    sym(l.destroy, "cublasDestroy_v2");
    sym(l.set_stream, "cublasSetStream_v2");
    sym(l.set_math_mode, "cublasSetMathMode");
    sym(l.set_workspace, "cublasSetWorkspace_v2");
    sym(l.sgemm, "cublasSgemmStridedBatched");
    sym(l.dgemm, "cublasDgemmStridedBatched");
    if (!l.error.empty())
      l.lib = nullptr;
  });
  return l;
}

} // namespace

const char *cublas_status_name(int s) {
  switch (s) {
#define KILN_CUBLAS_STATUS(x)                                                  \
  case x:                                                                      \
    return #x;
    KILN_CUBLAS_STATUS(CUBLAS_STATUS_SUCCESS)
    KILN_CUBLAS_STATUS(CUBLAS_STATUS_NOT_INITIALIZED)
    KILN_CUBLAS_STATUS(CUBLAS_STATUS_ALLOC_FAILED)
    KILN_CUBLAS_STATUS(CUBLAS_STATUS_INVALID_VALUE)
    KILN_CUBLAS_STATUS(CUBLAS_STATUS_ARCH_MISMATCH)
    KILN_CUBLAS_STATUS(CUBLAS_STATUS_MAPPING_ERROR)
    KILN_CUBLAS_STATUS(CUBLAS_STATUS_EXECUTION_FAILED)
    KILN_CUBLAS_STATUS(CUBLAS_STATUS_INTERNAL_ERROR)
    KILN_CUBLAS_STATUS(CUBLAS_STATUS_NOT_SUPPORTED)
    KILN_CUBLAS_STATUS(CUBLAS_STATUS_LICENSE_ERROR)
#undef KILN_CUBLAS_STATUS
  }
  return nullptr;
}

namespace {

void ok(cublasStatus_t s, const char *what) {
  if (s == CUBLAS_STATUS_SUCCESS)
    return;
  if (const char *name = cublas_status_name(s))
    fail("cuda: {} failed: {}", what, name);
  fail("cuda: {} failed with unknown cuBLAS status {}", what,
       static_cast<int>(s));
}

} // namespace

struct Cublas::Impl {
  const Lib &l = lib();
  cublasHandle_t h = nullptr;
  int math = 0;
};

Cublas::Cublas(CUstream stream, bool allow_tf32, bool deterministic,
               CUdeviceptr workspace, size_t workspace_bytes)
    : impl_(new Impl) {
  if (!impl_->l.lib) {
    std::string e = impl_->l.error;
    delete impl_;
    fail("cuda: {}", e);
  }
  ok(impl_->l.create(&impl_->h), "cublasCreate");
  ok(impl_->l.set_stream(impl_->h, reinterpret_cast<cudaStream_t>(stream)),
     "cublasSetStream");
  // Default math unless asked otherwise: CUBLAS_PEDANTIC_MATH forbids
  // every reduced-precision and split-K shortcut and can cost a lot of
  // speed; it is only for bit-reproducible runs (KILN_CUDA_DETERMINISTIC=1).
  // TF32 (opt-in) takes precedence: it changes results by design.
  cublasMath_t math = allow_tf32      ? CUBLAS_TF32_TENSOR_OP_MATH
                      : deterministic ? CUBLAS_PEDANTIC_MATH
                                      : CUBLAS_DEFAULT_MATH;
  impl_->math = math;
  ok(impl_->l.set_math_mode(impl_->h, math), "cublasSetMathMode");
  if (workspace)
    ok(impl_->l.set_workspace(impl_->h, reinterpret_cast<void *>(workspace),
                              workspace_bytes),
       "cublasSetWorkspace");
}

Cublas::~Cublas() {
  if (impl_->h) {
    // Reported, not thrown (a destructor).
    cublasStatus_t st = impl_->l.destroy(impl_->h);
    if (st != CUBLAS_STATUS_SUCCESS) {
      const char *name = cublas_status_name(st);
      fmt::print(stderr, "kiln: warning: cuda: cublasDestroy failed: {}\n",
                 name ? name : "an unknown cuBLAS status");
    }
  }
  delete impl_;
}

int Cublas::math_mode() const { return impl_->math; }

void Cublas::gemm(bool f64, bool trans_a, bool trans_b, int64_t m, int64_t n,
                  int64_t k, CUdeviceptr a, int64_t lda, int64_t stride_a,
                  CUdeviceptr b, int64_t ldb, int64_t stride_b, CUdeviceptr c,
                  int64_t stride_c, int64_t batch) {
  const Lib &l = impl_->l;
  int im = static_cast<int>(m), in = static_cast<int>(n),
      ik = static_cast<int>(k), ib = static_cast<int>(batch),
      ila = static_cast<int>(lda), ilb = static_cast<int>(ldb);
  cublasOperation_t ob = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                    oa = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (f64) {
    const double one = 1, zero = 0;
    ok(l.dgemm(impl_->h, ob, oa, in, im, ik, &one,
               reinterpret_cast<const double *>(b), ilb, stride_b,
               reinterpret_cast<const double *>(a), ila, stride_a, &zero,
               reinterpret_cast<double *>(c), in, stride_c, ib),
       "cublasDgemmStridedBatched");
  } else {
    const float one = 1, zero = 0;
    ok(l.sgemm(impl_->h, ob, oa, in, im, ik, &one,
               reinterpret_cast<const float *>(b), ilb, stride_b,
               reinterpret_cast<const float *>(a), ila, stride_a, &zero,
               reinterpret_cast<float *>(c), in, stride_c, ib),
       "cublasSgemmStridedBatched");
  }
}

} // namespace kiln::cuda
