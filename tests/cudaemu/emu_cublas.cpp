// The emulated cuBLAS (libkiln_cudaemu_cublas.so), loaded by kiln through
// KILN_CUBLAS. GEMM in the documented column-major semantics, with cuBLAS's
// argument checks (CUBLAS_STATUS_INVALID_VALUE for a negative dimension, a
// bad transpose, a leading dimension below max(1, rows), a null alpha/beta,
// a negative batch count) and its quick return when m, n or the batch count
// is 0; beta == 0 does not read C. The work is enqueued on the handle's
// stream of the emulated driver (so that it is recorded while the stream is
// captured) and every operand range is checked against the driver's
// allocations. A test harness: plain loops, fp32 accumulation for sgemm.
#include <cublas_v2.h>
#include <cuda.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#define KILN_EMU_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using Submit = CUresult (*)(CUstream, std::function<CUresult()> *);

// Set by the exit handler that cublasCreate registers (as the real
// library's CUDA runtime registers its teardown on first use).
bool g_exited = false;
void on_exit_teardown() { g_exited = true; }
using Range = int (*)(CUdeviceptr, size_t, std::string *);
using Record = void (*)(const char *);

struct Handle {
  static constexpr uint32_t kMagic = 0x4b454d42; // "KEMB"
  uint32_t magic = kMagic;
  CUstream stream = nullptr;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
  void *workspace = nullptr;
  size_t workspace_bytes = 0;
  Submit submit = nullptr;
  Range range = nullptr;
  Record record = nullptr; // the driver's work trace
};

Handle *as_handle(cublasHandle_t h) {
  auto *p = reinterpret_cast<Handle *>(h);
  return p && p->magic == Handle::kMagic ? p : nullptr;
}

bool valid_op(cublasOperation_t t) {
  return t == CUBLAS_OP_N || t == CUBLAS_OP_T || t == CUBLAS_OP_C;
}

// Elements [lo, hi] touched by a column-major rows x cols operand with
// leading dimension ld, `batch` times `stride` apart.
bool operand_ok(const Handle &h, const void *p, int64_t rows, int64_t cols,
                int64_t ld, long long stride, int64_t batch, size_t es,
                const char *name, const char *fn) {
  if (rows == 0 || cols == 0 || batch == 0)
    return true;
  int64_t last = (cols - 1) * ld + rows - 1;
  int64_t lo = std::min<int64_t>(0, (batch - 1) * stride);
  int64_t hi = last + std::max<int64_t>(0, (batch - 1) * stride);
  auto base = reinterpret_cast<CUdeviceptr>(p);
  std::string why;
  if (!p ||
      !h.range(base + static_cast<CUdeviceptr>(lo * static_cast<int64_t>(es)),
               static_cast<size_t>(hi - lo + 1) * es, &why)) {
    std::fprintf(stderr,
                 "kiln cudaemu: %s: operand %s at %p (%lld x %lld, ld %lld, "
                 "stride %lld, batch %lld) %s\n",
                 fn, name, p, static_cast<long long>(rows),
                 static_cast<long long>(cols), static_cast<long long>(ld),
                 stride, static_cast<long long>(batch),
                 p ? why.c_str() : "is null");
    return false;
  }
  return true;
}

template <typename T>
cublasStatus_t gemm(cublasHandle_t handle, cublasOperation_t ta,
                    cublasOperation_t tb, int64_t m, int64_t n, int64_t k,
                    const T *alpha, const T *A, int64_t lda, long long sa,
                    const T *B, int64_t ldb, long long sb, const T *beta, T *C,
                    int64_t ldc, long long sc, int64_t batch, const char *fn) {
  Handle *h = as_handle(handle);
  if (!h)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  bool an = ta == CUBLAS_OP_N, bn = tb == CUBLAS_OP_N;
  if (m < 0 || n < 0 || k < 0 || batch < 0 || !valid_op(ta) || !valid_op(tb) ||
      lda < std::max<int64_t>(1, an ? m : k) ||
      ldb < std::max<int64_t>(1, bn ? k : n) || ldc < std::max<int64_t>(1, m) ||
      !alpha || !beta)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0 || batch == 0)
    return CUBLAS_STATUS_SUCCESS;
  if (!operand_ok(*h, C, m, n, ldc, sc, batch, sizeof(T), "C", fn) ||
      (k > 0 && (!operand_ok(*h, A, an ? m : k, an ? k : m, lda, sa, batch,
                             sizeof(T), "A", fn) ||
                 !operand_ok(*h, B, bn ? k : n, bn ? n : k, ldb, sb, batch,
                             sizeof(T), "B", fn))))
    return CUBLAS_STATUS_EXECUTION_FAILED;
  T al = *alpha, be = *beta; // host pointer mode: read at the call
  auto op_char = [](cublasOperation_t t) {
    return t == CUBLAS_OP_N ? 'N' : t == CUBLAS_OP_T ? 'T' : 'C';
  };
  // "gemm cublasSgemmStridedBatched TN batch 1" in the driver's trace.
  std::string what = std::string("gemm ") + fn + " " + op_char(ta) +
                     op_char(tb) + " batch " + std::to_string(batch);
  Record record = h->record;
  std::function<CUresult()> op = [=] {
    if (record)
      record(what.c_str());
    for (int64_t p = 0; p < batch; ++p) {
      const T *a = A + p * sa, *b = B + p * sb;
      T *c = C + p * sc;
      for (int64_t j = 0; j < n; ++j)
        for (int64_t i = 0; i < m; ++i) {
          T acc = 0;
          for (int64_t q = 0; q < k; ++q)
            acc += (an ? a[i + q * lda] : a[q + i * lda]) *
                   (bn ? b[q + j * ldb] : b[j + q * ldb]);
          T &out = c[i + j * ldc];
          out = be == T(0) ? al * acc : al * acc + be * out;
        }
    }
    return CUDA_SUCCESS;
  };
  CUresult r = h->submit(h->stream, &op);
  return r == CUDA_SUCCESS ? CUBLAS_STATUS_SUCCESS
                           : CUBLAS_STATUS_EXECUTION_FAILED;
}

} // namespace

KILN_EMU_EXPORT cublasStatus_t cublasCreate_v2(cublasHandle_t *handle) {
  if (!handle)
    return CUBLAS_STATUS_INVALID_VALUE;
  // The emulated driver must already be loaded (as cuBLAS needs a CUDA
  // context): it is the one named by KILN_CUDA_DRIVER.
  const char *path = std::getenv("KILN_CUDA_DRIVER");
  void *drv = path && *path ? dlopen(path, RTLD_NOW | RTLD_NOLOAD) : nullptr;
  Submit submit =
      drv ? reinterpret_cast<Submit>(dlsym(drv, "kiln_cudaemu_submit"))
          : nullptr;
  Range range =
      drv ? reinterpret_cast<Range>(dlsym(drv, "kiln_cudaemu_device_range"))
          : nullptr;
  if (!submit || !range) {
    std::fprintf(stderr, "kiln cudaemu: cublasCreate: the emulated driver "
                         "(KILN_CUDA_DRIVER) is not loaded\n");
    return CUBLAS_STATUS_NOT_INITIALIZED;
  }
  // Registered at every creation, so it runs before the destructor of any
  // static constructed earlier (a forked child's too).
  std::atexit(on_exit_teardown);
  auto *h = new Handle;
  h->submit = submit;
  h->range = range;
  h->record = reinterpret_cast<Record>(dlsym(drv, "kiln_cudaemu_record"));
  *handle = reinterpret_cast<cublasHandle_t>(h);
  return CUBLAS_STATUS_SUCCESS;
}

KILN_EMU_EXPORT cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  if (g_exited) {
    // The real cuBLAS carries its own (static) CUDA runtime, whose exit
    // handlers tear it down; a handle destroyed after them (from a static
    // destructor) may crash or hang. Fail loudly so that kiln's explicit
    // shutdown is tested.
    std::fprintf(stderr,
                 "kiln cudaemu: cublasDestroy after cuBLAS's exit handlers "
                 "ran (a handle destroyed during static destruction)\n");
    std::abort();
  }
  Handle *h = as_handle(handle);
  if (!h)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  h->magic = 0;
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}

KILN_EMU_EXPORT cublasStatus_t cublasSetStream_v2(cublasHandle_t handle,
                                                  cudaStream_t stream) {
  Handle *h = as_handle(handle);
  if (!h)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  h->stream = reinterpret_cast<CUstream>(stream);
  return CUBLAS_STATUS_SUCCESS;
}

KILN_EMU_EXPORT cublasStatus_t cublasSetMathMode(cublasHandle_t handle,
                                                 cublasMath_t mode) {
  Handle *h = as_handle(handle);
  if (!h)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  switch (mode & 0xf) {
  case CUBLAS_DEFAULT_MATH:
  case CUBLAS_TENSOR_OP_MATH:
  case CUBLAS_PEDANTIC_MATH:
  case CUBLAS_TF32_TENSOR_OP_MATH:
    h->math = mode;
    return CUBLAS_STATUS_SUCCESS;
  default:
    return CUBLAS_STATUS_INVALID_VALUE;
  }
}

KILN_EMU_EXPORT cublasStatus_t cublasGetMathMode(cublasHandle_t handle,
                                                 cublasMath_t *mode) {
  Handle *h = as_handle(handle);
  if (!h)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!mode)
    return CUBLAS_STATUS_INVALID_VALUE;
  *mode = h->math;
  return CUBLAS_STATUS_SUCCESS;
}

KILN_EMU_EXPORT cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle,
                                                     void *ws, size_t bytes) {
  Handle *h = as_handle(handle);
  if (!h)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  if (bytes && !ws)
    return CUBLAS_STATUS_INVALID_VALUE;
  std::string why;
  if (bytes && !h->range(reinterpret_cast<CUdeviceptr>(ws), bytes, &why)) {
    std::fprintf(stderr, "kiln cudaemu: cublasSetWorkspace: %s\n", why.c_str());
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  h->workspace = ws;
  h->workspace_bytes = bytes;
  return CUBLAS_STATUS_SUCCESS;
}

KILN_EMU_EXPORT const char *cublasGetStatusName(cublasStatus_t s) {
  switch (s) {
  case CUBLAS_STATUS_SUCCESS:
    return "CUBLAS_STATUS_SUCCESS";
  case CUBLAS_STATUS_NOT_INITIALIZED:
    return "CUBLAS_STATUS_NOT_INITIALIZED";
  case CUBLAS_STATUS_INVALID_VALUE:
    return "CUBLAS_STATUS_INVALID_VALUE";
  case CUBLAS_STATUS_EXECUTION_FAILED:
    return "CUBLAS_STATUS_EXECUTION_FAILED";
  case CUBLAS_STATUS_NOT_SUPPORTED:
    return "CUBLAS_STATUS_NOT_SUPPORTED";
  default:
    return "CUBLAS_STATUS_UNKNOWN";
  }
}

KILN_EMU_EXPORT const char *cublasGetStatusString(cublasStatus_t s) {
  return cublasGetStatusName(s);
}

#define KILN_EMU_GEMMS(T, P)                                                   \
  KILN_EMU_EXPORT cublasStatus_t cublas##P##gemm_v2(                           \
      cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,     \
      int n, int k, const T *alpha, const T *A, int lda, const T *B, int ldb,  \
      const T *beta, T *C, int ldc) {                                          \
    return gemm<T>(h, ta, tb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C,   \
                   ldc, 0, 1, "cublas" #P "gemm");                             \
  }                                                                            \
  KILN_EMU_EXPORT cublasStatus_t cublas##P##gemm_v2_64(                        \
      cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int64_t m, \
      int64_t n, int64_t k, const T *alpha, const T *A, int64_t lda,           \
      const T *B, int64_t ldb, const T *beta, T *C, int64_t ldc) {             \
    return gemm<T>(h, ta, tb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C,   \
                   ldc, 0, 1, "cublas" #P "gemm_64");                          \
  }                                                                            \
  KILN_EMU_EXPORT cublasStatus_t cublas##P##gemmStridedBatched(                \
      cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,     \
      int n, int k, const T *alpha, const T *A, int lda, long long sa,         \
      const T *B, int ldb, long long sb, const T *beta, T *C, int ldc,         \
      long long sc, int batch) {                                               \
    return gemm<T>(h, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, \
                   ldc, sc, batch, "cublas" #P "gemmStridedBatched");          \
  }                                                                            \
  KILN_EMU_EXPORT cublasStatus_t cublas##P##gemmStridedBatched_64(             \
      cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int64_t m, \
      int64_t n, int64_t k, const T *alpha, const T *A, int64_t lda,           \
      long long sa, const T *B, int64_t ldb, long long sb, const T *beta,      \
      T *C, int64_t ldc, long long sc, int64_t batch) {                        \
    return gemm<T>(h, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, \
                   ldc, sc, batch, "cublas" #P "gemmStridedBatched_64");       \
  }

KILN_EMU_GEMMS(float, S)
KILN_EMU_GEMMS(double, D)
