#include "plan/kernel_summary.h"

#include "plan/plan.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace kiln {

std::vector<KernelInfo> summarize_kernels(const Graph &g) {
  ExecutionPlan p = lower(g);
  std::vector<KernelInfo> out;
  for (const Launch &l : p.launches) {
    KernelInfo k;
    std::vector<std::string> ops;
    if (l.kind == LaunchKind::copy) {
      k.kind = "copy";
      k.bytes_read = k.bytes_written = l.copy_bytes;
      out.push_back(std::move(k));
      continue;
    }
    const Node &n = *l.source;
    for (const Value *o : n.operands) {
      const Value *src = o;
      if (o->def && p.memory.folded.count(o->def)) {
        ops.push_back("transpose");
        src = o->def->operands[0];
      }
      k.bytes_read += static_cast<int64_t>(src->type.bytes());
    }
    for (const Value *r : n.results)
      k.bytes_written += static_cast<int64_t>(r->type.bytes());
    if (l.kind == LaunchKind::gemm) {
      k.kind = "gemm";
    } else if (n.op == Op::Fused) {
      k.kind = std::string(fused_kind_name(*l.fused));
      for (auto &b : n.body->nodes())
        if (b->op != Op::Constant)
          ops.emplace_back(b->info().name);
    } else {
      k.kind = std::string(n.info().name);
    }
    if (n.op != Op::Fused)
      ops.insert(ops.begin(), std::string(n.info().name));
    k.ops = fmt::format("{}", fmt::join(ops, ", "));
    out.push_back(std::move(k));
  }
  return out;
}

std::string format_kernel_summary(const std::vector<KernelInfo> &kernels) {
  std::string s;
  int64_t r = 0, w = 0;
  for (size_t i = 0; i < kernels.size(); ++i) {
    const KernelInfo &k = kernels[i];
    s += fmt::format("kernel {:>2}  {:<13} read {:>10} B  write {:>10} B  "
                     "{}\n",
                     i, k.kind, k.bytes_read, k.bytes_written, k.ops);
    r += k.bytes_read;
    w += k.bytes_written;
  }
  s += fmt::format("total: {} kernels, read {} B, write {} B\n", kernels.size(),
                   r, w);
  return s;
}

} // namespace kiln
