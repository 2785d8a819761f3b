// The CPU backend: fused loops and standalone elementwise ops/reductions
// JIT-compiled with LLVM (codegen/llvm_kernel.h), GEMMs through OpenBLAS,
// everything parallelised over one thread pool.
//
// How an executable is laid out. compile(graph) turns the graph into a flat
// list of launches in node order, each reading and writing fixed locations:
//   - graph inputs: the Arrays given to run() (pointers bound per run);
//   - one arena (allocated once) holding every intermediate value at an
//     offset chosen by a liveness-based memory plan (values whose lifetimes
//     do not overlap share bytes);
//   - one persistent Array per non-aliased graph output, written directly by
//     the launch producing it;
//   - constants, filled once at compile time.
// `reshape` is a view (no launch, no bytes); a `transpose` of the last two
// axes whose only users are matmuls is folded into the GEMM call
// (CblasTrans), no copy. An output aliasing an input (an in-place update of
// a param or state) is written straight into that input's storage by the
// kernel producing it when that is safe (no later reader of the old value,
// same-index elementwise access); otherwise it is copied there at the end.
//
// run() allocates no buffers: the returned non-aliased outputs are the
// executable's own Arrays, overwritten by the next run() — clone() a result
// to keep it across runs. Aliased outputs are returned as the input Arrays.
// One executable runs one step at a time (run() is not reentrant); separate
// executables may run from separate threads (launches take turns on the
// pool). KILN_NUM_THREADS sets the pool size (default: every core). GEMMs
// run as single-threaded OpenBLAS calls on the pool's threads, one per tile.
// Results are bitwise the same for any thread count: work splits (kernel
// chunks, GEMM tiles) depend on the shapes only, and every output element is
// computed by one thread in a fixed order.
//
// Reductions parallelise over output rows / column tiles: a full reduction
// of one large array runs on one thread (vectorized).
#pragma once

#include "runtime/backend.h"

#include <cstddef>
#include <memory>

namespace kiln {

// `threads` counts the calling thread; 0 uses the process-wide pool with
// every core (or KILN_NUM_THREADS).
std::unique_ptr<Backend> make_cpu_backend(int threads = 0);

// What one compiled executable does per run, for tests, `kiln ir` and
// benchmarks.
struct CpuExecutableStats {
  int kernel_launches = 0;   // JIT kernels (fused, elementwise, reductions)
  int gemm_launches = 0;     // matmul nodes (each a loop over its batch)
  int host_launches = 0;     // transpose, one_hot, random_uniform
  int copies = 0;            // output copies at the end of a run
  int folded_transposes = 0; // transposes read by GEMMs with CblasTrans
  int inplace_outputs = 0;   // aliased outputs written in place
  int kernels_compiled = 0;  // kernels built now (others: from the cache)
  size_t arena_bytes = 0;
};
// The stats of a CPU executable; nullptr for another backend's.
const CpuExecutableStats *cpu_executable_stats(const Executable &e);

} // namespace kiln
