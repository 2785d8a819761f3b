// The CPU backend's launches that are not JIT kernels: GEMMs through
// OpenBLAS's CBLAS, layout copies, one_hot, Philox random numbers and fills.
#pragma once

#include "ir/infer.h"
#include "ir/types.h"
#include "plan/plan.h"
#include "runtime/cpu_thread_pool.h"

#include <cstdint>
#include <vector>

namespace kiln {

// The plan's GEMM (plan/plan.h): C[p] = op(A[p]) @ op(B[p]) for every batch
// index p, row-major.
// Each product is cut into the tiles of gemm_tiles(m, n, k), one
// single-threaded OpenBLAS call each, run on `pool`: the tiling depends on
// the shape only, so the result is bitwise the same for any thread count
// (OpenBLAS's own threading is not: its split, and so its rounding, follows
// its thread count). Sets OpenBLAS to one thread.
void run_gemm(const GemmDesc &g, const void *a, const void *b, void *c,
              ThreadPool &pool);
// tm x tn tiles of C, nm x nn of them.
struct GemmTiles {
  int64_t tm, tn, nm, nn;
};
GemmTiles gemm_tiles(int64_t m, int64_t n, int64_t k);
// OpenBLAS's thread count (tests: what KILN_NUM_THREADS used to set).
void set_blas_threads(int n);

// dst = transpose(src, perm) for src of type `in`.
void host_transpose(const Type &in, const std::vector<int64_t> &perm,
                    const void *src, void *dst, ThreadPool &pool);
// dst = concat(srcs, axis) for operands of types `ins`.
void host_concat(const std::vector<Type> &ins, int axis,
                 const std::vector<const void *> &srcs, void *dst);
// dst = slice(src) for src of type `in` (ir/infer.h, SliceBounds).
void host_slice(const Type &in, const SliceBounds &sb, const void *src,
                void *dst, ThreadPool &pool);
// dst = pad(src) for src of type `in` (ir/infer.h, PadBounds).
void host_pad(const Type &in, const PadBounds &pb, const void *src, void *dst,
              ThreadPool &pool);
// dst[..., c] = (labels[...] == c); throws kiln::Error on a label out of
// range, so it runs on the calling thread.
void host_one_hot(const Type &labels, const Type &out, const void *src,
                  void *dst);
// Philox uniform [0, 1) exactly as ir/philox.h and the interpreter draw.
void host_random_uniform(const Type &out, int64_t seed, int64_t offset,
                         void *dst, ThreadPool &pool);
// Every element of dst = v (rounded to the dtype).
void host_fill(const Type &t, double v, void *dst);
// Reads element 0 of an integer scalar.
int64_t host_read_int(DType d, const void *p);

} // namespace kiln
