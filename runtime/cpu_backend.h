// The CPU backend: fused loops and standalone elementwise ops/reductions
// JIT-compiled with LLVM (codegen/llvm_kernel.h), GEMMs through OpenBLAS,
// everything parallelised over one thread pool.
//
// compile(graph) lowers the graph to its execution plan (plan/plan.h: the
// launch list, the buffer assignment, transposes folded into GEMMs, in-place
// updates) and makes each launch callable: fused kernels JIT-compiled, GEMMs
// as OpenBLAS calls with the plan's transpose flags, transpose/one_hot/
// random_uniform as host loops, copies as memmove. Buffers: graph inputs
// (pointers bound per run), one arena allocated once, one persistent Array
// per non-aliased output, constants filled at compile time. run() walks the
// launch list; nothing else is decided here.
//
// run() allocates only the Arrays it returns: each non-aliased output is
// computed into the executable's own buffer and handed out as a copy (the
// loss, logits: small), so a result keeps its values after the next run, as
// on the interpreter and CUDA. Aliased outputs are returned as the input
// Arrays, updated in place.
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

struct ExecutionPlan;

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
  // Launches (of every kind, copies included) run() performed so far: a
  // run performs exactly the plan's launch list.
  int64_t launches_run = 0;
};
// The stats of a CPU executable; nullptr for another backend's.
const CpuExecutableStats *cpu_executable_stats(const Executable &e);
// The execution plan a CPU executable runs; nullptr for another backend's.
const ExecutionPlan *cpu_executable_plan(const Executable &e);

} // namespace kiln
