// `kiln ir --stage kernels --target llvm` (tools/ir_stages.h). Apart from
// ir_stages.cpp so that the code built only with the LLVM code generator
// (KILN_HAVE_LLVM_CODEGEN) sits in one file.
#include "tools/ir_stages.h"

#include "ir/error.h"
#include "ir/fused_kind.h"

#ifdef KILN_HAVE_LLVM_CODEGEN
#include "codegen/llvm_kernel.h"
#endif

#include <fmt/format.h>

namespace kiln {

bool have_llvm_codegen() {
#ifdef KILN_HAVE_LLVM_CODEGEN
  return true;
#else
  return false;
#endif
}

std::string llvm_kernels_ir([[maybe_unused]] const Graph &g) {
#ifdef KILN_HAVE_LLVM_CODEGEN
  std::string s = fmt::format(
      "; CPU kernels of @{}: LLVM IR after the O3 pipeline, one module per "
      "kernel in launch order\n; (ABI: void kernel(void *const *args, i64 "
      "begin, i64 end), codegen/llvm_kernel.h)\n",
      g.name);
  int k = 0;
  for (const auto &n : g.nodes()) {
    std::string what = fmt::format(
        "{} -> {}", n->info().name,
        n->results.empty() ? std::string("()") : n->result()->type.str());
    if (is_llvm_kernel_op(*n)) {
      std::string text;
      if (n->body) {
        std::vector<std::string> ops;
        for (const auto &b : n->body->nodes())
          ops.push_back(std::string(b->info().name));
        auto fk = fused_kind_of(*n);
        what = fmt::format("fused {} -> {}: {}",
                           fk ? fused_kind_name(*fk) : "fused",
                           n->result()->type.str(), fmt::join(ops, ", "));
        text = llvm_kernel_ir(*n, /*optimized=*/true);
      } else {
        std::unique_ptr<Graph> w = wrap_as_fused(*n);
        text = llvm_kernel_ir(*w->nodes()[0], /*optimized=*/true);
      }
      s += fmt::format("\n; ---- kernel {}: {}\n{}", k++, what, text);
    } else if (n->op == Op::Matmul) {
      s += fmt::format("\n; ---- {}: OpenBLAS GEMM, no LLVM IR\n", what);
    } else if (n->op == Op::Transpose) {
      s += fmt::format("\n; ---- {}: folded into the GEMMs reading it "
                       "(CblasTrans) or a host loop, no LLVM IR\n",
                       what);
    } else if (n->op != Op::Constant && n->op != Op::Reshape) {
      // constants are filled at compile time, reshapes are views
      s += fmt::format("\n; ---- {}: a host loop, no LLVM IR\n", what);
    }
  }
  return s;
#else
  fail("--target llvm: this kiln was built without the LLVM code generator "
       "(KILN_WITH_LLVM=OFF)");
#endif
}

} // namespace kiln
