// Builds the LLVM IR of one CPU kernel (see codegen/llvm_kernel.h for the
// ABI). Internal to codegen/llvm_*.cpp.
#pragma once

#include "ir/graph.h"
#include "plan/kernel_plan.h"

#include <string>

namespace llvm {
class Module;
}

namespace kiln {

// Appends to `m` the function `name` implementing the fused node `fused`.
// Throws kiln::Error when the node breaks the fused-node contract.
// Emits `fused` as function `name`, rendering its loop plan `plan`
// (plan_kernel(fused), usually the execution plan's).
void emit_kernel(llvm::Module &m, const Node &fused, const KernelPlan &plan,
                 const std::string &name);

} // namespace kiln
