// cuBLAS, loaded with dlopen on the first matmul (libcublas.so.13, then
// libcublas.so, then $CUDA_HOME/lib64 and /usr/local/cuda/lib64): linking
// it would cost every process ~80 ms and ~215 MB at start.
#pragma once

#include "runtime/cuda_driver.h"

#include <cstdint>
#include <string>

namespace kiln::cuda {

class Cublas {
public:
  // Loads the library and creates a handle bound to `stream`: cuBLAS's
  // default math, TF32 tensor cores only when allowed, CUBLAS_PEDANTIC_MATH
  // only when `deterministic`. Throws kiln::Error when unavailable.
  // `workspace` (bytes of device memory) keeps cuBLAS from allocating
  // while a CUDA graph is being captured.
  Cublas(CUstream stream, bool allow_tf32, bool deterministic,
         CUdeviceptr workspace, size_t workspace_bytes);
  ~Cublas();
  Cublas(const Cublas &) = delete;
  Cublas &operator=(const Cublas &) = delete;

  // Row-major C[m,n] = op(A) op(B), `batch` times with element strides
  // (0: the operand is shared by every batch). A is stored [m,k] (or [k,m]
  // when `trans_a`) with leading dimension `lda`, B [k,n] (or [n,k] when
  // `trans_b`) with `ldb`; C is dense, ldc = n. cuBLAS is column-major, so
  // this computes C^T = op(B)^T op(A)^T: B first (CUBLAS_OP_T when
  // `trans_b`), A second.
  void gemm(bool f64, bool trans_a, bool trans_b, int64_t m, int64_t n,
            int64_t k, CUdeviceptr a, int64_t lda, int64_t stride_a,
            CUdeviceptr b, int64_t ldb, int64_t stride_b, CUdeviceptr c,
            int64_t stride_c, int64_t batch);

  // The cublasMath_t the handle was given (for tests).
  int math_mode() const;

private:
  struct Impl;
  Impl *impl_;
};

// "CUBLAS_STATUS_INVALID_VALUE" for a cublasStatus_t, nullptr if unknown.
const char *cublas_status_name(int status);

} // namespace kiln::cuda
