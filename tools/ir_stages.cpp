#include "tools/ir_stages.h"

#include "ir/error.h"
#include "plan/kernel_summary.h"
#include "plan/memory_plan.h"

#ifdef KILN_HAVE_CUDA_CODEGEN
#include "codegen/cuda_emitter.h"
#endif

#include <fmt/format.h>

#include <map>

namespace kiln {

namespace {

// What a person calls the kernel: the fused kinds spelled out, other kinds
// (gemm, or the op of a standalone kernel) as they are.
std::string kernel_label(const std::string &kind) {
  if (kind == "elementwise")
    return "fused elementwise";
  if (kind == "multi_tensor")
    return "multi-tensor update";
  return kind;
}

} // namespace

std::string kernel_report(const Graph &g) {
  std::vector<KernelInfo> kernels = summarize_kernels(g);
  std::string s = fmt::format("// kernels of @{}:\n", g.name);
  int64_t read = 0, written = 0;
  std::map<std::string, int> per_kind;
  for (size_t i = 0; i < kernels.size(); ++i) {
    const KernelInfo &k = kernels[i];
    std::string label = kernel_label(k.kind);
    s += fmt::format("//   kernel {:>2}  {:<19}  read {:>9} B  write {:>9} B  "
                     "{}\n",
                     i, label, k.bytes_read, k.bytes_written, k.ops);
    read += k.bytes_read;
    written += k.bytes_written;
    ++per_kind[label];
  }
  std::vector<std::string> kinds;
  for (const auto &[label, n] : per_kind)
    kinds.push_back(fmt::format("{} {}", n, label));
  s += fmt::format("// total: {} kernels ({}); read {} B, write {} B\n",
                   kernels.size(), fmt::join(kinds, ", "), read, written);
  MemoryPlan plan = plan_memory(g);
  s += fmt::format("// arena peak {} B, without reuse {} B ({:.1f}% saved)\n",
                   plan.arena_bytes, plan.no_reuse_bytes,
                   plan.no_reuse_bytes
                       ? 100.0 * (plan.no_reuse_bytes - plan.arena_bytes) /
                             plan.no_reuse_bytes
                       : 0.0);
  return s;
}

bool have_cuda_codegen() {
#ifdef KILN_HAVE_CUDA_CODEGEN
  return true;
#else
  return false;
#endif
}

std::string cuda_translation_unit([[maybe_unused]] const Graph &g) {
#ifdef KILN_HAVE_CUDA_CODEGEN
  return cuda::emit_cuda_translation_unit(g);
#else
  fail("--target cuda: this kiln was built without the CUDA code generator "
       "(kiln_codegen_cuda needs the CUDA toolkit at configure time)");
#endif
}

} // namespace kiln
