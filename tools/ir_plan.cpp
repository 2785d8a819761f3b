// `kiln ir --stage plan [--target cpu|cuda]` (tools/ir_stages.h): the
// execution plan of a fused graph, and what each target makes of each
// launch. The plan is the same for both targets; only the detail lines
// under the launches differ.
#include "tools/ir_stages.h"

#include "plan/plan.h"

#ifdef KILN_HAVE_CUDA_CODEGEN
#include "codegen/cuda_emitter.h"
#endif

#include <fmt/format.h>

#include <algorithm>

namespace kiln {

namespace {

std::string cpu_detail(const Launch &l) {
  switch (l.kind) {
  case LaunchKind::gemm:
    return fmt::format("cpu: cblas_{}gemm{}{}, tiled over the thread pool",
                       l.gemm.f64 ? 'd' : 's', l.gemm.trans_a ? " TransA" : "",
                       l.gemm.trans_b ? " TransB" : "");
  case LaunchKind::kernel:
    if (l.loop)
      return fmt::format(
          "cpu: LLVM kernel, {} work items, chunks of {}", l.loop->work,
          std::max<int64_t>(
              1, static_cast<int64_t>(32768.0 /
                                      std::max(1.0, l.loop->bytes_per_item))));
    return fmt::format("cpu: host loop ({})", op_name(l.kernel->op));
  case LaunchKind::copy:
    return "cpu: memmove";
  }
  return "";
}

std::string cuda_detail(const Launch &l, size_t index) {
  switch (l.kind) {
  case LaunchKind::gemm: {
    const GemmDesc &g = l.gemm;
    bool strided = g.stride_a >= 0 && g.stride_b >= 0 && g.stride_c >= 0;
    return fmt::format(
        "cuda: cublas{}gemm{} (column-major C^T = op(B)^T op(A)^T: opB={} "
        "opA={})",
        g.f64 ? 'D' : 'S',
        g.batch() > 1 ? (strided ? "StridedBatched" : " per batch") : "",
        g.trans_b ? "CUBLAS_OP_T" : "CUBLAS_OP_N",
        g.trans_a ? "CUBLAS_OP_T" : "CUBLAS_OP_N");
  }
  case LaunchKind::kernel:
#ifdef KILN_HAVE_CUDA_CODEGEN
    return cuda::cuda_launch_detail(*l.kernel,
                                    cuda::cuda_kernel_name(index, *l.source));
#else
    (void)index;
    return fmt::format("cuda: NVRTC kernel ({}; this kiln was built without "
                       "the CUDA code generator)",
                       l.fused ? fused_kind_name(*l.fused)
                               : op_name(l.kernel->op));
#endif
  case LaunchKind::copy:
    return "cuda: cuMemcpyDtoDAsync";
  }
  return "";
}

} // namespace

std::string plan_report(const Graph &g, const std::string &target) {
  ExecutionPlan p = lower(g);
  if (target != "cuda")
    return format_plan(p, cpu_detail);
  return format_plan(p, [&p](const Launch &l) {
    return cuda_detail(l, static_cast<size_t>(&l - p.launches.data()));
  });
}

} // namespace kiln
