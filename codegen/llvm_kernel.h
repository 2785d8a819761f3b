// The LLVM CPU code generator: fused nodes (and standalone elementwise ops
// and reductions wrapped as one-node fused nodes) become machine code through
// LLVM IR, optimized at O3 for the host CPU and compiled with ORC LLJIT.
//
// Kernel ABI. Every kernel is a C function
//
//   void kernel(void *const *args, int64_t begin, int64_t end);
//
// `args` holds one pointer per body input (in body-input order, i.e. the
// fused node's operands) followed by one pointer per body output (the
// node's results), each pointing at a dense row-major array of the value's
// type (bool is one byte). The kernel does the work items [begin, end) of
// [0, LlvmKernelInfo::work); disjoint ranges may run on different threads.
//   - elementwise: work item i is element i of the result space;
//   - multi_tensor: the spaces of the independent chains, concatenated;
//   - reduction: one item per (kept outer index, tile of the kept inner axes)
//     of the reduction; see plan/kernel_plan.h.
// A result may share storage with an operand only when both have the same
// shape and the node reads that operand at the same index it writes (an
// in-place update); otherwise arrays must not overlap. For a reduction this
// holds for an extra output (results 1.., shape of the reduced operand):
// each point is read once and then written, in the same visit.
//
// Compiled code is cached per process by the kernel's structural key (body,
// types, attributes): compiling the same kernel again reuses the code.
// This header includes no LLVM header; LLVM stays inside codegen/llvm_*.cpp.
#pragma once

#include "ir/graph.h"
#include "plan/kernel_plan.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln {

using KernelFn = void (*)(void *const *args, int64_t begin, int64_t end);

// What the runtime needs to know to launch a kernel.
struct LlvmKernelInfo {
  std::string key;           // structural key (the cache key)
  int64_t work = 0;          // the range [0, work) split across threads
  double bytes_per_item = 0; // memory traffic per work item, for chunking
  int num_args = 0;          // body inputs + body outputs
};

// True when the LLVM backend can compile `n` as a kernel: a fused node, an
// elementwise op, an iota, or a reduction (sum, mean, amax, softmax,
// log_softmax).
bool is_llvm_kernel_op(const Node &n);

// The launch facts of a fused node; throws kiln::Error when the node breaks
// the fused-node contract.
LlvmKernelInfo describe_kernel(const Node &fused);
// The same from the node's loop plan (plan_kernel(fused)), planned already.
LlvmKernelInfo describe_kernel(const Node &fused, const KernelPlan &plan);

// Collects the kernels of one executable and compiles them together: the
// ones not already in the process cache go into one LLVM module, optimized
// and JIT-compiled in one session.
class LlvmCompiler {
public:
  LlvmCompiler();
  ~LlvmCompiler();
  LlvmCompiler(const LlvmCompiler &) = delete;
  LlvmCompiler &operator=(const LlvmCompiler &) = delete;

  // Registers a fused node (which must stay alive until compile()); returns
  // its kernel index. Throws kiln::Error on a contract violation.
  int add(const Node &fused);
  // The same with the node's loop plan (the execution plan's), so the
  // kernel is not planned again; `plan` must stay alive until compile().
  int add(const Node &fused, std::shared_ptr<const KernelPlan> plan);
  // Compiles every registered kernel; throws kiln::Error on failure.
  void compile();
  int size() const { return static_cast<int>(entries_.size()); }
  KernelFn kernel(int i) const;
  const LlvmKernelInfo &info(int i) const;
  // How many kernels compile() had to build (the rest came from the cache).
  int compiled_count() const { return compiled_; }

private:
  struct Entry {
    const Node *node;
    std::shared_ptr<const KernelPlan> plan;
    LlvmKernelInfo info;
    KernelFn fn = nullptr;
  };
  std::vector<Entry> entries_;
  int compiled_ = 0;
};

// The LLVM IR of one kernel as text, before or after the O3 pipeline (for
// `kiln ir` and tests).
std::string llvm_kernel_ir(const Node &fused, bool optimized);

// Number of kernels in the process-wide cache.
size_t llvm_kernel_cache_size();

} // namespace kiln
