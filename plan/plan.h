// The execution plan: what a compiled graph does, decided once, after
// fusion, for every target (the XLA "buffer assignment + thunks" idea).
//
//   optimized graph --lower--> ExecutionPlan --render--> Executable
//      (passes/)                 (plan/)        (codegen/ + runtime/)
//
// A plan is an ordered list of launches, each reading and writing fixed
// buffers of one buffer assignment (plan/memory_plan.h):
//   - Gemm:   a matmul, with its transpose flags (a transpose of the last two
//             axes read only by matmuls is folded into them: CblasTrans on
//             the CPU, CUBLAS_OP_T on CUDA, never a kernel), leading
//             dimensions and per-batch matrix offsets;
//   - Kernel: a fused node of a typed kind with its loop plan
//             (plan/kernel_plan.h), or a standalone op the target renders as
//             one kernel (transpose, one_hot, random_uniform, broadcast_to:
//             a copy kernel; elementwise ops, iotas and reductions are
//             wrapped as one-node fused kernels);
//   - Copy:   an output written at the end of a run into its output buffer
//             or, for an in-place update that could not be written in place,
//             into its input.
// Reshapes and folded transposes are views (no launch); constants are
// buffers filled once when the plan is loaded. Code generators render the
// kernels; runtimes only walk the launch list, resolving each buffer against
// the memory they bound for this run. `kiln ir --stage plan` prints it.
#pragma once

#include "ir/fused_kind.h"
#include "ir/graph.h"
#include "plan/kernel_plan.h"
#include "plan/memory_plan.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kiln {

// A matmul C[b] = op(A[b]) op(B[b]) on row-major matrices, over the batch of
// the result (numpy broadcasting of the operands' batch axes).
struct GemmDesc {
  bool f64 = false;
  int64_t m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false; // A stored [k,m], B stored [n,k]
  int64_t lda = 1, ldb = 1;              // of the stored matrices
  // Element offsets of each batch's matrices (one entry per batch index of
  // the result; a broadcast operand repeats its offsets).
  std::vector<int64_t> a_off, b_off, c_off;
  // The same as constant strides when the offsets are an arithmetic
  // sequence (0: shared by every batch); -1 when they are not.
  int64_t stride_a = -1, stride_b = -1, stride_c = -1;
  int64_t batch() const { return static_cast<int64_t>(c_off.size()); }
};

enum class LaunchKind : uint8_t { gemm, kernel, copy };

struct Launch {
  LaunchKind kind = LaunchKind::kernel;
  // The graph node it comes from (nullptr for a copy).
  const Node *source = nullptr;
  // Kernel: the node the code generator renders: `source` itself (a fused
  // node or a standalone transpose/one_hot/random_uniform), or the fused
  // node wrapping it (ExecutionPlan::wrappers).
  const Node *kernel = nullptr;
  std::optional<FusedKind> fused; // the kernel's kind when it is fused
  // Gemm: A, B, C. Kernel: one per operand of `kernel`, then one per
  // result. Copy: source, destination.
  std::vector<BufferRef> args;
  GemmDesc gemm;
  std::shared_ptr<const KernelPlan> loop; // fused kernels
  std::string name;                       // "%7 (elementwise)"
  int64_t bytes = 0;                      // moved: each operand and result once
  double flops = 0; // 2mnk per GEMM, one per body op and element
  int64_t copy_bytes = 0;
};

struct ExecutionPlan {
  const Graph *graph = nullptr; // not owned: the lowered graph
  MemoryPlan memory;            // the one buffer assignment
  std::vector<Launch> launches;
  // One-node fused graphs made for standalone ops (Launch::kernel).
  std::vector<std::unique_ptr<Graph>> wrappers;
  // Staging buffers for copies from one input into another (by type).
  std::vector<Type> staging;

  int count(LaunchKind k) const;
};

// Lowers an optimized graph. The plan points into `g`, which must outlive
// it and stay unchanged. Throws kiln::Error (located at the node) for a
// node no target can run or a fused node that breaks its contract.
ExecutionPlan lower(const Graph &g);

// A one_hot (or gather/scatter_add index) data input gets the range [0,
// num_classes) (or [0, the indexed axis's size)), so a bad label or index
// is an error before the step runs (the CPU and CUDA backends call this).
void add_label_ranges(Graph &g);

// The launch list as text, one launch per line: index, kind, name, shapes,
// buffers, FLOPs and bytes; `detail` (optional) adds target lines under a
// kernel launch (the CUDA launch shape, the CPU loop).
std::string
format_plan(const ExecutionPlan &p,
            const std::function<std::string(const Launch &)> &detail = {});

// "arena+128", "input 2", "output 0", "constant 1", "staging 0".
std::string buffer_str(const BufferRef &b);

} // namespace kiln
