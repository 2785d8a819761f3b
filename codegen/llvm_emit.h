// Builds the LLVM IR of one CPU kernel (see codegen/llvm_kernel.h for the
// ABI). Internal to codegen/llvm_*.cpp.
#pragma once

#include "ir/graph.h"

#include <string>

namespace llvm {
class Module;
}

namespace kiln {

// Appends to `m` the function `name` implementing the fused node `fused`.
// Throws kiln::Error when the node breaks the fused-node contract.
void emit_kernel(llvm::Module &m, const Node &fused, const std::string &name);

} // namespace kiln
