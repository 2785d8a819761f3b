// The emulated CUDA device's own tests (kiln_cudaemu_tests): threads and
// blocks, barriers and warp shuffles (and the errors a GPU would hang or
// misbehave on), range-checked memory, stream capture and graph replay,
// cuBLAS's column-major semantics and argument checks, and fault injection
// into kiln's generated kernels: a deleted __syncthreads or a halved
// shuffle mask must make a run fail; and, through the emulator's work
// trace, that a compiled MLP step runs exactly its execution plan. The binary
// points kiln at the emulated libraries itself (KILN_CUDA_DRIVER, KILN_NVRTC,
// KILN_CUBLAS).
#include "codegen/cuda_emitter.h"
#include "codegen/cuda_nvrtc.h"
#include "ir/builder.h"
#include "ir/error.h"
#include "passes/pass_manager.h"
#include "plan/plan.h"
#include "runtime/backend.h"
#include "runtime/cuda_backend.h"
#include "runtime/cuda_driver.h"
#include "tests/runtime/cpu_test_util.h"

#include <cublas_v2.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>

namespace kiln {
namespace {

// Before anything loads a library: the emulated ones, this build's cache.
const bool env_set = [] {
  setenv("KILN_CUDA_DRIVER", KILN_CUDAEMU_DRIVER_PATH, 1);
  setenv("KILN_NVRTC", KILN_CUDAEMU_NVRTC_PATH, 1);
  setenv("KILN_CUBLAS", KILN_CUDAEMU_CUBLAS_PATH, 1);
  setenv("KILN_CUDAEMU_CACHE", KILN_CUDAEMU_DEFAULT_CACHE, 0);
  setenv("KILN_KERNEL_CACHE", "0", 1);
  unsetenv("KILN_CUDAEMU_INJECT");
  return true;
}();

const char *const kOrders[] = {"forward", "reverse", "random"};

const cuda::Driver &drv() {
  std::string why;
  const cuda::Driver *d = cuda::Driver::get(&why);
  if (!d)
    throw std::runtime_error("the emulated driver does not load: " + why);
  return *d;
}

// A context current on this thread (the runtime's Context does the same).
void use_context() {
  const cuda::Driver &d = drv();
  CUdevice dev;
  CUcontext ctx;
  cuda::check(d, d.cuDeviceGet(&dev, 0), "cuDeviceGet");
  cuda::check(d, d.cuDevicePrimaryCtxRetain(&ctx, dev), "retain");
  cuda::check(d, d.cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
}

struct Kernel {
  CUmodule mod = nullptr;
  CUfunction fn = nullptr;
};

Kernel load(const std::string &src, const char *name) {
  use_context();
  const cuda::Driver &d = drv();
  cuda::NvrtcOptions o;
  cuda::NvrtcResult r = cuda::nvrtc_compile(src, name, o, nullptr);
  Kernel k;
  cuda::check(d, d.cuModuleLoadData(&k.mod, r.binary.data()), "load");
  cuda::check(d, d.cuModuleGetFunction(&k.fn, k.mod, name), "function");
  return k;
}

// Launches `k` with the given int* device buffer; returns the result and,
// when it failed, the emulator's message.
CUresult launch(const Kernel &k, unsigned grid, unsigned block, CUdeviceptr buf,
                std::string *msg = nullptr, CUstream s = nullptr) {
  const cuda::Driver &d = drv();
  void *params[] = {&buf};
  CUresult r =
      d.cuLaunchKernel(k.fn, grid, 1, 1, block, 1, 1, 0, s, params, nullptr);
  if (r != CUDA_SUCCESS && msg) {
    const char *m = nullptr;
    d.cuGetErrorString(r, &m);
    *msg = m ? m : "";
  }
  return r;
}

struct DeviceInts {
  CUdeviceptr p = 0;
  size_t n;
  explicit DeviceInts(size_t count) : n(count) {
    cuda::check(drv(), drv().cuMemAlloc(&p, n * 4), "cuMemAlloc");
    std::vector<int> zero(n, 0);
    put(zero);
  }
  ~DeviceInts() { drv().cuMemFree(p); }
  void put(const std::vector<int> &v) {
    cuda::check(drv(), drv().cuMemcpyHtoD(p, v.data(), n * 4), "HtoD");
  }
  std::vector<int> get() const {
    std::vector<int> v(n);
    cuda::check(drv(), drv().cuMemcpyDtoH(v.data(), p, n * 4), "DtoH");
    return v;
  }
};

class CudaEmu : public ::testing::Test {
protected:
  void SetUp() override { setenv("KILN_CUDAEMU_ORDER", "forward", 1); }
  void TearDown() override {
    setenv("KILN_CUDAEMU_ORDER", "forward", 1);
    unsetenv("KILN_CUDAEMU_INJECT");
  }
};

TEST_F(CudaEmu, EveryThreadOfEveryBlockRunsWithItsIndices) {
  Kernel k = load(R"(
extern "C" __global__ void __launch_bounds__(64) ids(int *out) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  out[i] = i * 10 + (int)gridDim.x;
})",
                  "ids");
  DeviceInts out(3 * 64);
  for (const char *order : kOrders) {
    setenv("KILN_CUDAEMU_ORDER", order, 1);
    ASSERT_EQ(launch(k, 3, 64, out.p), CUDA_SUCCESS) << order;
    std::vector<int> v = out.get();
    for (int i = 0; i < 3 * 64; ++i)
      ASSERT_EQ(v[i], i * 10 + 3) << order << " " << i;
  }
}

TEST_F(CudaEmu, AtomicsAndSyncwarpWork) {
  Kernel k = load(R"(
extern "C" __global__ void count(int *out) {
  atomicAdd(&out[0], 1);
  atomicMax(&out[1], (int)(blockIdx.x * blockDim.x + threadIdx.x));
  __syncwarp();
  if (atomicCAS(&out[2], 0, 1) == 0)
    out[3] = blockIdx.x * 1000 + threadIdx.x;
})",
                  "count");
  DeviceInts out(4);
  for (const char *order : kOrders) {
    setenv("KILN_CUDAEMU_ORDER", order, 1);
    out.put({0, 0, 0, -1});
    ASSERT_EQ(launch(k, 3, 64, out.p), CUDA_SUCCESS);
    std::vector<int> v = out.get();
    EXPECT_EQ(v[0], 3 * 64);
    EXPECT_EQ(v[1], 3 * 64 - 1);
    EXPECT_EQ(v[2], 1);
    EXPECT_GE(v[3], 0);
  }
}

// A block-wide reversal through shared memory: right in every order with
// the barrier; without it, wrong in at least one order (forward: thread 0
// reads slot 63 before thread 63 wrote it).
TEST_F(CudaEmu, AMissingBarrierShowsAsAnOrderDependentResult) {
  const char *src = R"(
extern "C" __global__ void rev(int *io) {
  __shared__ int tile[64];
  tile[threadIdx.x] = io[blockIdx.x * 64 + threadIdx.x];
  BARRIER
  io[blockIdx.x * 64 + threadIdx.x] = tile[63 - threadIdx.x];
})";
  auto run = [&](const std::string &barrier, const char *order) {
    std::string s = src;
    s.replace(s.find("BARRIER"), 7, barrier);
    Kernel k = load(s, "rev");
    DeviceInts io(2 * 64);
    std::vector<int> in(2 * 64);
    for (int i = 0; i < 128; ++i)
      in[i] = i + 1000;
    io.put(in);
    setenv("KILN_CUDAEMU_ORDER", order, 1);
    EXPECT_EQ(launch(k, 2, 64, io.p), CUDA_SUCCESS);
    std::vector<int> v = io.get();
    for (int i = 0; i < 128; ++i)
      if (v[i] != in[(i / 64) * 64 + 63 - i % 64])
        return false;
    return true;
  };
  int wrong = 0;
  for (const char *order : kOrders) {
    EXPECT_TRUE(run("__syncthreads();", order)) << order;
    wrong += !run("", order);
  }
  EXPECT_GT(wrong, 0) << "a missing barrier went unnoticed in every order";
}

TEST_F(CudaEmu, ABarrierReachedByOnlySomeThreadsIsReported) {
  Kernel k = load(R"(
extern "C" __global__ void half_barrier(int *out) {
  if (threadIdx.x < 16)
    return;
  __syncthreads();
  out[threadIdx.x] = 1;
})",
                  "half_barrier");
  DeviceInts out(32);
  std::string msg;
  EXPECT_EQ(launch(k, 1, 32, out.p, &msg), CUDA_ERROR_LAUNCH_FAILED);
  EXPECT_NE(msg.find("half_barrier"), std::string::npos) << msg;
  EXPECT_NE(msg.find("__syncthreads reached by 16 of 32 threads"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("exited"), std::string::npos) << msg;
}

TEST_F(CudaEmu, WarpShufflesExchangeValues) {
  Kernel k = load(R"(
extern "C" __global__ void shuffles(int *out) {
  int v = threadIdx.x * 100;
  int i = threadIdx.x;
  out[i] = __shfl_xor_sync(0xffffffffu, v, 3);
  out[64 + i] = __shfl_down_sync(0xffffffffu, v, 2);
  out[128 + i] = __shfl_up_sync(0xffffffffu, v, 1);
  out[192 + i] = __shfl_sync(0xffffffffu, v, 7);
  out[256 + i] = __shfl_xor_sync(0xffffffffu, v, 1, 8);
})",
                  "shuffles");
  DeviceInts out(5 * 64);
  for (const char *order : kOrders) {
    setenv("KILN_CUDAEMU_ORDER", order, 1);
    ASSERT_EQ(launch(k, 1, 64, out.p), CUDA_SUCCESS);
    std::vector<int> v = out.get();
    for (int t = 0; t < 64; ++t) {
      int lane = t % 32, base = t - lane;
      EXPECT_EQ(v[t], (base + (lane ^ 3)) * 100);
      EXPECT_EQ(v[64 + t], (lane + 2 < 32 ? t + 2 : t) * 100);
      EXPECT_EQ(v[128 + t], (lane >= 1 ? t - 1 : t) * 100);
      EXPECT_EQ(v[192 + t], (base + 7) * 100);
      EXPECT_EQ(v[256 + t], (t ^ 1) * 100);
    }
  }
}

TEST_F(CudaEmu, AShuffleWithAnExitedLaneIsReported) {
  Kernel k = load(R"(
extern "C" __global__ void lost_lane(int *out) {
  if (threadIdx.x == 5)
    return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1);
})",
                  "lost_lane");
  DeviceInts out(32);
  std::string msg;
  EXPECT_EQ(launch(k, 1, 32, out.p, &msg), CUDA_ERROR_LAUNCH_FAILED);
  EXPECT_NE(msg.find("waits for lane 5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("exited"), std::string::npos) << msg;
}

TEST_F(CudaEmu, AShuffleMaskWithoutTheCallingLaneIsReported) {
  Kernel k = load(R"(
extern "C" __global__ void bad_mask(int *out) {
  out[threadIdx.x] = __shfl_xor_sync(0x0000ffffu, (int)threadIdx.x, 1);
})",
                  "bad_mask");
  DeviceInts out(32);
  std::string msg;
  EXPECT_EQ(launch(k, 1, 32, out.p, &msg), CUDA_ERROR_LAUNCH_FAILED);
  EXPECT_NE(msg.find("does not name its own lane"), std::string::npos) << msg;
}

TEST_F(CudaEmu, CopiesAndFreesAreRangeChecked) {
  use_context();
  const cuda::Driver &d = drv();
  CUdeviceptr p = 0;
  ASSERT_EQ(d.cuMemAlloc(&p, 100), CUDA_SUCCESS);
  std::vector<char> host(200, 1);
  EXPECT_EQ(d.cuMemcpyHtoD(p, host.data(), 100), CUDA_SUCCESS);
  EXPECT_EQ(d.cuMemcpyHtoD(p, host.data(), 101), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(d.cuMemcpyDtoH(host.data(), p + 50, 60), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(d.cuMemcpyDtoH(host.data(), p + 50, 50), CUDA_SUCCESS);
  EXPECT_EQ(d.cuMemsetD8Async(p + 99, 0, 2, nullptr), CUDA_ERROR_INVALID_VALUE);
  CUdeviceptr host_ptr = reinterpret_cast<CUdeviceptr>(host.data());
  EXPECT_EQ(d.cuMemcpyDtoH(host.data() + 100, host_ptr, 4),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(d.cuMemFree(p + 8), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(d.cuMemFree(p), CUDA_SUCCESS);
  EXPECT_EQ(d.cuMemFree(p), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(d.cuMemcpyHtoD(p, host.data(), 4), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(CudaEmu, CaptureRecordsAndGraphLaunchReplays) {
  Kernel k = load(R"(
extern "C" __global__ void bump(int *x) { x[blockIdx.x * blockDim.x + threadIdx.x] += 1; }
)",
                  "bump");
  const cuda::Driver &d = drv();
  CUstream s;
  ASSERT_EQ(d.cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
  DeviceInts x(64);
  ASSERT_EQ(d.cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
            CUDA_SUCCESS);
  ASSERT_EQ(launch(k, 2, 32, x.p, nullptr, s), CUDA_SUCCESS);
  ASSERT_EQ(launch(k, 2, 32, x.p, nullptr, s), CUDA_SUCCESS);
  CUgraph g = nullptr;
  ASSERT_EQ(d.cuStreamEndCapture(s, &g), CUDA_SUCCESS);
  EXPECT_EQ(x.get(), std::vector<int>(64, 0)) << "captured work ran";
  CUgraphExec e = nullptr;
  ASSERT_EQ(d.cuGraphInstantiateWithFlags(&e, g, 0), CUDA_SUCCESS);
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(d.cuGraphLaunch(e, s), CUDA_SUCCESS);
  ASSERT_EQ(d.cuStreamSynchronize(s), CUDA_SUCCESS);
  EXPECT_EQ(x.get(), std::vector<int>(64, 6));
  d.cuGraphExecDestroy(e);
  d.cuGraphDestroy(g);

  // An allocation during a capture fails and invalidates it.
  ASSERT_EQ(d.cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
            CUDA_SUCCESS);
  CUdeviceptr p = 0;
  EXPECT_EQ(d.cuMemAlloc(&p, 16), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  EXPECT_EQ(d.cuStreamEndCapture(s, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  EXPECT_EQ(g, nullptr);
  EXPECT_EQ(d.cuStreamDestroy(s), CUDA_SUCCESS);
}

// A kernel writing past the end of an allocation: into the rounding to
// 256 bytes (the canary: an error after the launch), or further, onto the
// guard page (a fault that names the allocation).
TEST_F(CudaEmu, AKernelWritingPastTheEndIsReported) {
  Kernel k = load(R"(
extern "C" __global__ void overrun(int *x) { x[threadIdx.x] = 7; }
)",
                  "overrun");
  const cuda::Driver &d = drv();
  CUdeviceptr p = 0;
  ASSERT_EQ(d.cuMemAlloc(&p, 30 * 4), CUDA_SUCCESS);
  std::string msg;
  EXPECT_EQ(launch(k, 1, 30, p, &msg), CUDA_SUCCESS) << msg;
  EXPECT_EQ(launch(k, 1, 32, p, &msg), CUDA_ERROR_ILLEGAL_ADDRESS);
  EXPECT_NE(msg.find("overrun"), std::string::npos) << msg;
  EXPECT_NE(msg.find("wrote bytes 0..7 past the end of the device allocation"),
            std::string::npos)
      << msg;
  EXPECT_EQ(launch(k, 1, 30, p, &msg), CUDA_SUCCESS) << "canary restored";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(launch(k, 1, 1024, p),
               "kernel overrun: access to 0x[0-9a-f]+, [0-9]+ bytes past the "
               "end of the device allocation");
  d.cuMemFree(p);
}

// Work on a stream runs when the host synchronises, not when it is
// enqueued: a host that reads too early sees the old data, as it may on a
// GPU; errors surface at the synchronisation.
TEST_F(CudaEmu, StreamWorkRunsAtSynchronisation) {
  Kernel k = load(R"(
extern "C" __global__ void bump2(int *x) { x[threadIdx.x] += 1; }
)",
                  "bump2");
  const cuda::Driver &d = drv();
  CUstream s;
  ASSERT_EQ(d.cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
  DeviceInts x(32);
  ASSERT_EQ(launch(k, 1, 32, x.p, nullptr, s), CUDA_SUCCESS);
  EXPECT_EQ(x.get(), std::vector<int>(32, 0)) << "read before the sync";
  ASSERT_EQ(d.cuStreamSynchronize(s), CUDA_SUCCESS);
  EXPECT_EQ(x.get(), std::vector<int>(32, 1));
  Kernel bad = load(R"(
extern "C" __global__ void bad_barrier(int *x) {
  if (threadIdx.x == 0) return;
  __syncthreads();
  x[threadIdx.x] = 2;
})",
                    "bad_barrier");
  ASSERT_EQ(launch(bad, 1, 32, x.p, nullptr, s), CUDA_SUCCESS);
  ASSERT_EQ(launch(k, 1, 32, x.p, nullptr, s), CUDA_SUCCESS);
  EXPECT_EQ(d.cuStreamSynchronize(s), CUDA_ERROR_LAUNCH_FAILED);
  EXPECT_EQ(x.get(), std::vector<int>(32, 1)) << "work after a fault ran";

  // An asynchronous copy from pinned memory reads it when it runs; from
  // pageable memory the bytes are staged at the call.
  void *pin = nullptr;
  ASSERT_EQ(d.cuMemAllocHost(&pin, 4), CUDA_SUCCESS);
  int pageable = 5;
  *static_cast<int *>(pin) = 5;
  ASSERT_EQ(d.cuMemcpyHtoDAsync(x.p, pin, 4, s), CUDA_SUCCESS);
  ASSERT_EQ(d.cuMemcpyHtoDAsync(x.p + 4, &pageable, 4, s), CUDA_SUCCESS);
  *static_cast<int *>(pin) = 6;
  pageable = 6;
  ASSERT_EQ(d.cuStreamSynchronize(s), CUDA_SUCCESS);
  std::vector<int> v = x.get();
  EXPECT_EQ(v[0], 6);
  EXPECT_EQ(v[1], 5);
  // ... and a copy to pageable memory completes before the call returns.
  ASSERT_EQ(launch(k, 1, 32, x.p, nullptr, s), CUDA_SUCCESS);
  ASSERT_EQ(d.cuMemcpyDtoHAsync(&pageable, x.p, 4, s), CUDA_SUCCESS);
  EXPECT_EQ(pageable, 7);
  d.cuMemFreeHost(pin);
  EXPECT_EQ(d.cuStreamDestroy(s), CUDA_SUCCESS);
}

// ---------------------------------------------------------------- cuBLAS

struct Blas {
  void *lib = dlopen(KILN_CUDAEMU_CUBLAS_PATH, RTLD_NOW | RTLD_LOCAL);
  template <typename F> F sym(const char *n) {
    return reinterpret_cast<F>(dlsym(lib, n));
  }
  decltype(&::cublasCreate_v2) create =
      sym<decltype(&::cublasCreate_v2)>("cublasCreate_v2");
  decltype(&::cublasDestroy_v2) destroy =
      sym<decltype(&::cublasDestroy_v2)>("cublasDestroy_v2");
  decltype(&::cublasSgemm_v2) sgemm =
      sym<decltype(&::cublasSgemm_v2)>("cublasSgemm_v2");
  decltype(&::cublasDgemmStridedBatched) dgemm_sb =
      sym<decltype(&::cublasDgemmStridedBatched)>("cublasDgemmStridedBatched");
};

template <typename T> CUdeviceptr upload(const std::vector<T> &v) {
  CUdeviceptr p = 0;
  cuda::check(drv(), drv().cuMemAlloc(&p, v.size() * sizeof(T)), "alloc");
  cuda::check(drv(), drv().cuMemcpyHtoD(p, v.data(), v.size() * sizeof(T)),
              "HtoD");
  return p;
}
template <typename T> std::vector<T> download(CUdeviceptr p, size_t n) {
  std::vector<T> v(n);
  cuda::check(drv(), drv().cuMemcpyDtoH(v.data(), p, n * sizeof(T)), "DtoH");
  return v;
}

TEST_F(CudaEmu, CublasIsColumnMajorAndChecksItsArguments) {
  use_context();
  Blas b;
  ASSERT_TRUE(b.lib && b.create && b.sgemm && b.dgemm_sb);
  cublasHandle_t h = nullptr;
  ASSERT_EQ(b.create(&h), CUBLAS_STATUS_SUCCESS);
  // C (2x3) = A^T B with A stored 4x2 (lda 4), B 4x3 (ldb 5), ldc 2.
  const int m = 2, n = 3, k = 4, lda = 4, ldb = 5, ldc = 2;
  std::vector<float> A(lda * m), B(ldb * n), C(ldc * n, 7.0f);
  for (size_t i = 0; i < A.size(); ++i)
    A[i] = static_cast<float>(i) * 0.5f - 1;
  for (size_t i = 0; i < B.size(); ++i)
    B[i] = static_cast<float>(i % 7) - 2;
  CUdeviceptr dA = upload(A), dB = upload(B), dC = upload(C);
  auto *pA = reinterpret_cast<const float *>(dA);
  auto *pB = reinterpret_cast<const float *>(dB);
  auto *pC = reinterpret_cast<float *>(dC);
  float alpha = 2, beta = 0.5f;
  ASSERT_EQ(b.sgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, pA, lda, pB,
                    ldb, &beta, pC, ldc),
            CUBLAS_STATUS_SUCCESS);
  std::vector<float> got = download<float>(dC, C.size());
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      float acc = 0;
      for (int q = 0; q < k; ++q)
        acc += A[q + i * lda] * B[q + j * ldb];
      EXPECT_FLOAT_EQ(got[i + j * ldc], alpha * acc + beta * 7.0f);
    }
  // The documented argument checks: CUBLAS_STATUS_INVALID_VALUE.
  auto sg = [&](cublasOperation_t ta, int mm, int nn, int kk, int la, int lb,
                int lc, const float *al) {
    return b.sgemm(h, ta, CUBLAS_OP_N, mm, nn, kk, al, pA, la, pB, lb, &beta,
                   pC, lc);
  };
  EXPECT_EQ(sg(CUBLAS_OP_N, -1, n, k, 2, 5, 2, &alpha),
            CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(sg(CUBLAS_OP_N, m, n, k, 1, 5, 2, &alpha),
            CUBLAS_STATUS_INVALID_VALUE); // lda < m
  EXPECT_EQ(sg(CUBLAS_OP_T, m, n, k, 3, 5, 2, &alpha),
            CUBLAS_STATUS_INVALID_VALUE); // lda < k
  EXPECT_EQ(sg(CUBLAS_OP_N, m, n, k, 2, 3, 2, &alpha),
            CUBLAS_STATUS_INVALID_VALUE); // ldb < k
  EXPECT_EQ(sg(CUBLAS_OP_N, m, n, k, 2, 5, 1, &alpha),
            CUBLAS_STATUS_INVALID_VALUE); // ldc < m
  EXPECT_EQ(sg(CUBLAS_OP_N, m, n, k, 2, 5, 2, nullptr),
            CUBLAS_STATUS_INVALID_VALUE);
  // k == 0 with ldb == k: invalid (ldb must be >= max(1, k)), as kiln's
  // row-major call passes for a zero inner dimension.
  EXPECT_EQ(sg(CUBLAS_OP_N, m, n, 0, 2, 0, 2, &alpha),
            CUBLAS_STATUS_INVALID_VALUE);
  // k == 0 with valid leading dimensions: C = beta C.
  ASSERT_EQ(sg(CUBLAS_OP_N, m, n, 0, 2, 1, 2, &alpha), CUBLAS_STATUS_SUCCESS);
  got = download<float>(dC, C.size());
  std::vector<float> before = got;
  // m == 0: a quick return that touches nothing.
  EXPECT_EQ(sg(CUBLAS_OP_N, 0, n, k, 1, 5, 1, &alpha), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(download<float>(dC, C.size()), before);
  // An operand past the end of its allocation is an execution failure.
  EXPECT_EQ(sg(CUBLAS_OP_N, m, n, k, 2, 5, 2, &alpha) == CUBLAS_STATUS_SUCCESS,
            true); // A is 8 floats: 2 x 4 fits
  EXPECT_EQ(b.sgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, pA, 3, pB,
                    ldb, &beta, pC, ldc),
            CUBLAS_STATUS_EXECUTION_FAILED); // (k-1)*3+m = 11 > 8

  // Strided batched, f64, A shared by every batch (stride 0).
  std::vector<double> a2 = {1, 2, 3, 4}, b2(2 * 2 * 3), c2(2 * 2 * 3, -1);
  for (size_t i = 0; i < b2.size(); ++i)
    b2[i] = static_cast<double>(i);
  CUdeviceptr da2 = upload(a2), db2 = upload(b2), dc2 = upload(c2);
  double one = 1, zero = 0;
  ASSERT_EQ(b.dgemm_sb(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one,
                       reinterpret_cast<const double *>(da2), 2, 0,
                       reinterpret_cast<const double *>(db2), 2, 4, &zero,
                       reinterpret_cast<double *>(dc2), 2, 4, 3),
            CUBLAS_STATUS_SUCCESS);
  std::vector<double> c2got = download<double>(dc2, c2.size());
  for (int p = 0; p < 3; ++p)
    for (int j = 0; j < 2; ++j)
      for (int i = 0; i < 2; ++i) {
        double acc = 0;
        for (int q = 0; q < 2; ++q)
          acc += a2[i + q * 2] * b2[p * 4 + q + j * 2];
        EXPECT_EQ(c2got[p * 4 + i + j * 2], acc);
      }
  EXPECT_EQ(b.dgemm_sb(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one,
                       reinterpret_cast<const double *>(da2), 2, 0,
                       reinterpret_cast<const double *>(db2), 2, 4, &zero,
                       reinterpret_cast<double *>(dc2), 2, 4, -1),
            CUBLAS_STATUS_INVALID_VALUE);
  b.destroy(h);
  for (CUdeviceptr p : {dA, dB, dC, da2, db2, dc2})
    drv().cuMemFree(p);
}

// ------------------------------------------------- fault injection into kiln

// A one-reduction graph whose kernel uses the block reduction
// (kiln_block_reduce: shuffles, then shared memory across warps), the warp
// reduction, or the column layout (part[8][33] across threadIdx.y).
std::unique_ptr<Graph> reduction(Shape s, int64_t axis) {
  auto g = std::make_unique<Graph>("fault");
  Builder b(*g);
  Value *x = g->add_input("x", {DType::f32, s});
  g->add_output(b.sum(x, {axis}));
  return g;
}

// A row softmax: every thread of the block uses the block reductions'
// results (the max, then the sum).
std::unique_ptr<Graph> softmax_rows(Shape s) {
  auto g = std::make_unique<Graph>("fault_softmax");
  Builder b(*g);
  Value *x = g->add_input("x", {DType::f32, s});
  g->add_output(b.softmax(x));
  return g;
}

// Runs the graph on the emulated device in `order` with fault `inject`
// ("" for none); "ok", "differs" or the error message.
std::string outcome(Backend &cuda, const Graph &g, const char *order,
                    const char *inject) {
  if (*inject)
    setenv("KILN_CUDAEMU_INJECT", inject, 1);
  else
    unsetenv("KILN_CUDAEMU_INJECT");
  setenv("KILN_CUDAEMU_ORDER", order, 1);
  Array x(g.inputs()[0].value->type);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1, 1);
  // Rows of different levels: a stale shared value left by the previous
  // row (or run) is then wrong, not nearly right.
  int64_t row = x.type().shape.back();
  for (int64_t i = 0; i < x.numel(); ++i)
    x.set(i, u(rng) + 2.0 * static_cast<double>(i / row % 5));
  std::vector<Array> a = {x.clone()}, b = {x.clone()};
  std::vector<Array> want = make_interpreter_backend()->compile(g)->run(b);
  std::vector<Array> got;
  try {
    got = cuda.compile(g)->run(a);
  } catch (const Error &e) {
    return e.what();
  }
  for (int64_t i = 0; i < want[0].numel(); ++i)
    if (!(std::fabs(got[0].get(i) - want[0].get(i)) <=
          1e-4 * (1 + std::fabs(want[0].get(i)))))
      return "differs";
  return "ok";
}

class CudaEmuFault : public CudaEmu {};

TEST_F(CudaEmuFault, ADeletedSyncthreadsInAGeneratedReductionFails) {
  std::string why;
  auto cuda = make_cuda_backend_if_available(&why);
  ASSERT_TRUE(cuda) << why;
  struct Case {
    const char *what;
    std::unique_ptr<Graph> g;
    const char *fault;
  };
  Case cases[] = {
      // kiln_block_reduce's first barrier (partials -> warp 0) and second
      // (total -> every thread: only a softmax reads it in every thread);
      // the column layout's first barrier.
      {"block reduce, barrier 0", reduction({4, 5000}, 1),
       "drop_syncthreads=0"},
      {"softmax, block reduce barrier 1", softmax_rows({4, 5000}),
       "drop_syncthreads=1"},
      {"column reduce, barrier 3", reduction({1024, 130}, 0),
       "drop_syncthreads=3"},
  };
  for (Case &c : cases) {
    SCOPED_TRACE(c.what);
    int failed = 0;
    std::string seen;
    for (const char *order : kOrders) {
      EXPECT_EQ(outcome(*cuda, *c.g, order, ""), "ok") << order;
      std::string r = outcome(*cuda, *c.g, order, c.fault);
      seen += std::string(order) + ": " + r + "\n";
      failed += r != "ok";
    }
    EXPECT_GT(failed, 0) << "the fault went unnoticed:\n" << seen;
  }
}

TEST_F(CudaEmuFault, AHalvedShuffleMaskInAGeneratedReductionIsReported) {
  std::string why;
  auto cuda = make_cuda_backend_if_available(&why);
  ASSERT_TRUE(cuda) << why;
  auto g = reduction({64, 10}, 1); // one warp per row: kiln_warp_reduce
  EXPECT_EQ(outcome(*cuda, *g, "forward", ""), "ok");
  std::string r = outcome(*cuda, *g, "forward", "halve_shfl_mask");
  EXPECT_NE(r.find("CUDA_ERROR_LAUNCH_FAILED"), std::string::npos) << r;
  EXPECT_NE(r.find("warp shuffle"), std::string::npos) << r;
}

// The emulated driver's work trace (kernels, device copies, memsets and
// cuBLAS calls as they run).
struct WorkTrace {
  void (*set)(int) = nullptr;
  void (*take)(std::vector<std::string> *) = nullptr;
  WorkTrace() {
    void *h = dlopen(KILN_CUDAEMU_DRIVER_PATH, RTLD_NOW | RTLD_NOLOAD);
    if (h) {
      set = reinterpret_cast<void (*)(int)>(dlsym(h, "kiln_cudaemu_set_trace"));
      take = reinterpret_cast<void (*)(std::vector<std::string> *)>(
          dlsym(h, "kiln_cudaemu_take_trace"));
    }
  }
};

// The work a run of `plan` must perform, in order: each kernel launch its
// kernel (and a split reduction's second kernel), each GEMM one
// strided-batched cuBLAS call with the plan's transpose flags (cuBLAS's
// first operand is B), each copy one device copy.
std::vector<std::string> expected_work(const ExecutionPlan &plan) {
  std::vector<std::string> w;
  for (size_t i = 0; i < plan.launches.size(); ++i) {
    const Launch &l = plan.launches[i];
    switch (l.kind) {
    case LaunchKind::kernel: {
      cuda::CudaKernel k = cuda::emit_cuda_kernel(
          *l.kernel, cuda::cuda_kernel_name(i, *l.source));
      w.push_back("kernel " + k.name);
      if (!k.finish_name.empty())
        w.push_back("kernel " + k.finish_name);
      break;
    }
    case LaunchKind::gemm:
      w.push_back(fmt::format("gemm cublasSgemmStridedBatched {}{} batch {}",
                              l.gemm.trans_b ? 'T' : 'N',
                              l.gemm.trans_a ? 'T' : 'N', l.gemm.batch()));
      break;
    case LaunchKind::copy:
      w.push_back("memcpy_dtod");
      break;
    }
  }
  return w;
}

// The MLP training step through the default pipeline on the emulated
// device: exactly the plan's launches (at most 16, no transpose kernel:
// the backward pass's transposes are CUBLAS_OP_T), on the first run and on
// graph replays, with the unfused step's results on the interpreter.
TEST_F(CudaEmu, MlpStepRunsExactlyThePlansLaunches) {
  std::string why;
  auto cuda = make_cuda_backend_if_available(&why);
  ASSERT_TRUE(cuda) << why;
  WorkTrace trace;
  ASSERT_TRUE(trace.set && trace.take);
  const int64_t classes = 10;
  auto g = test::mlp_step_graph(16, {40, 24, classes});
  auto fused = g->clone();
  PassOptions opts;
  opts.read_env = false;
  opts.verify_each = true;
  PassManager pm(opts);
  pm.add_pipeline(default_pipeline());
  pm.run(*fused);
  auto exe = cuda->compile(*fused);
  const ExecutionPlan *plan = cuda_executable_plan(*exe);
  ASSERT_NE(plan, nullptr);
  EXPECT_LE(plan->launches.size(), 16u) << format_plan(*plan);
  EXPECT_GE(plan->memory.folded.size(), 2u) << format_plan(*plan);
  int transposed = 0;
  for (const Launch &l : plan->launches) {
    if (l.kind == LaunchKind::kernel) {
      EXPECT_NE(l.kernel->op, Op::Transpose) << l.name;
    }
    transposed += l.gemm.trans_a || l.gemm.trans_b;
  }
  EXPECT_GE(transposed, 2) << format_plan(*plan);
  std::vector<std::string> want = expected_work(*plan);
  int op_t = 0;
  for (const std::string &w : want) {
    EXPECT_EQ(w.find("transpose"), std::string::npos) << w;
    op_t += w.rfind("gemm", 0) == 0 && w.find('T') != std::string::npos;
  }
  EXPECT_EQ(op_t, transposed);

  auto ref = make_interpreter_backend()->compile(*g);
  std::vector<Array> a = test::mlp_step_inputs(*g, classes, 31);
  std::vector<Array> b = test::clone_all(a);
  for (int step = 0; step < 3; ++step) {
    SCOPED_TRACE(fmt::format("step {}", step));
    trace.set(1);
    std::vector<Array> got = exe->run(a);
    trace.set(0);
    std::vector<std::string> work;
    trace.take(&work);
    EXPECT_EQ(work, want) << format_plan(*plan);
    std::vector<Array> ref_out = ref->run(b);
    test::expect_close(got[0], ref_out[0], "loss", 1e-4, 1e-6);
  }
  cuda_sync_to_host(*cuda);
  for (size_t k = 3; k < a.size(); ++k)
    test::expect_close(a[k], b[k], fmt::format("param/state {}", k), 1e-4,
                       1e-6);
}

// The plan's fixed buffers and copies on the device: two params swapped
// through aliased outputs (each source is an input a later copy
// overwrites, so both go through staging buffers), an input and a
// constant returned as outputs (copies into output buffers), for three
// runs (the later ones replayed as a CUDA graph).
TEST_F(CudaEmu, StagingAndConstantCopiesMatchTheInterpreter) {
  std::string why;
  auto cuda = make_cuda_backend_if_available(&why);
  ASSERT_TRUE(cuda) << why;
  Graph g("swap");
  Value *a = g.add_input("a", {DType::f32, {5}}, InputKind::param);
  Value *b = g.add_input("b", {DType::f32, {5}}, InputKind::param);
  Builder bl(g);
  g.add_output(b, 0);
  g.add_output(a, 1);
  g.add_output(a);
  g.add_output(bl.constant(2.5, {DType::f32, {2, 3}}));
  auto exe = cuda->compile(g);
  const ExecutionPlan *plan = cuda_executable_plan(*exe);
  ASSERT_NE(plan, nullptr);
  EXPECT_EQ(plan->staging.size(), 2u) << format_plan(*plan);
  EXPECT_EQ(plan->memory.constants.size(), 1u) << format_plan(*plan);
  EXPECT_EQ(plan->count(LaunchKind::copy), 6) << format_plan(*plan);
  auto ref = make_interpreter_backend()->compile(g);
  std::vector<Array> x = test::random_inputs(g, 5);
  std::vector<Array> y = test::clone_all(x);
  for (int step = 0; step < 3; ++step) {
    SCOPED_TRACE(fmt::format("step {}", step));
    std::vector<Array> got = exe->run(x), want = ref->run(y);
    for (size_t k : {2, 3})
      test::expect_close(got[k], want[k], fmt::format("output {}", k));
  }
  cuda_sync_to_host(*cuda);
  test::expect_close(x[0], y[0], "a");
  test::expect_close(x[1], y[1], "b");
}

// gather and scatter_add (codegen/cuda_emitter.cpp: one thread per result
// element, scatter_add in gather form without atomics) against the
// interpreter: every axis, i32 and i64 indices with repeats, in each thread
// order; an index input out of range is an error before the step
// (add_label_ranges), and a computed one reads 0 instead of past the end.
TEST_F(CudaEmu, GatherAndScatterAddMatchTheInterpreter) {
  std::string why;
  auto cuda = make_cuda_backend_if_available(&why);
  ASSERT_TRUE(cuda) << why;
  struct Case {
    DType data, index;
    Shape x, idx;
    int64_t axis;
  };
  const Case cases[] = {{DType::f32, DType::i64, {7, 5}, {3, 4}, 0},
                        {DType::f64, DType::i32, {2, 6, 3}, {5}, 1},
                        {DType::f32, DType::i32, {3, 2, 4}, {}, 2},
                        {DType::f64, DType::i64, {4, 300}, {9}, 0}};
  for (const Case &c : cases) {
    SCOPED_TRACE(fmt::format("{} x {} axis {}", dtype_name(c.data),
                             shape_str(c.x), c.axis));
    Graph g("t");
    Value *x = g.add_input("x", {c.data, c.x});
    Value *i = g.add_input("i", {c.index, c.idx});
    Builder b(g);
    Value *y = b.op(Op::Gather, {x, i}, {{"axis", c.axis}});
    Value *u = g.add_input("u", y->type);
    g.add_output(y);
    g.add_output(
        b.op(Op::ScatterAdd, {i, u},
             {{"axis", c.axis}, {"size", c.x[static_cast<size_t>(c.axis)]}}));
    std::vector<Array> in = test::random_inputs(g, 11);
    std::mt19937 rng(5);
    for (int64_t k = 0; k < in[1].numel(); ++k)
      in[1].set(k, static_cast<double>(rng() %
                                       static_cast<uint32_t>(
                                           std::min<int64_t>(3, c.x[c.axis]))));
    std::vector<Array> want = make_interpreter_backend()->compile(g)->run(in);
    for (const char *order : kOrders) {
      setenv("KILN_CUDAEMU_ORDER", order, 1);
      std::vector<Array> got = cuda->compile(g)->run(in);
      for (size_t k = 0; k < 2; ++k)
        test::expect_close(got[k], want[k],
                           fmt::format("{} output {}", order, k));
    }
    in[1].set(0, static_cast<double>(c.x[c.axis]));
    try {
      cuda->compile(g)->run(in);
      ADD_FAILURE() << "an index out of range was accepted";
    } catch (const Error &e) {
      EXPECT_NE(
          std::string(e.what()).find(fmt::format(
              "input %i of @t: element 0 is {}, outside [0, {}), the range "
              "of the gather that reads it",
              c.x[c.axis], c.x[c.axis])),
          std::string::npos)
          << e.what();
    }
  }
  // Computed indices (i + 2) are not checked before the step: those out of
  // range read 0, and the emulator's range checks see no read past x.
  Graph g("t");
  Value *x = g.add_input("x", {DType::f32, {4, 2}});
  Value *i = g.add_input("i", {DType::i32, {3}});
  Builder b(g);
  g.add_output(
      b.op(Op::Gather, {x, b.add(i, b.scalar(2, DType::i32))}, {{"axis", 0}}));
  std::vector<Array> in = test::random_inputs(g, 2);
  for (int k = 0; k < 3; ++k)
    in[1].set(k, k); // rows 2, 3, 4 (out of range)
  std::vector<Array> got = cuda->compile(g)->run(in);
  for (int k = 0; k < 2; ++k) {
    EXPECT_EQ(got[0].get(k), in[0].get(4 + k));
    EXPECT_EQ(got[0].get(2 + k), in[0].get(6 + k));
    EXPECT_EQ(got[0].get(4 + k), 0.0);
  }
}

} // namespace
} // namespace kiln
