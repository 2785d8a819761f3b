// The text form of an execution plan (`kiln ir --stage plan`).
#include "plan/plan.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace kiln {

std::string buffer_str(const BufferRef &b) {
  switch (b.space) {
  case Space::input:
    return fmt::format("input {}", b.index);
  case Space::arena:
    return fmt::format("arena+{}", b.offset);
  case Space::output:
    return fmt::format("output {}", b.index);
  case Space::constant:
    return fmt::format("constant {}", b.index);
  case Space::staging:
    return fmt::format("staging {}", b.index);
  }
  return "?";
}

namespace {

std::string types_str(const std::vector<Value *> &vs) {
  std::vector<std::string> s;
  for (const Value *v : vs)
    s.push_back(v->type.str());
  return fmt::format("{}", fmt::join(s, ", "));
}

std::string gemm_str(const Launch &l) {
  const GemmDesc &g = l.gemm;
  std::string s = fmt::format("{} x {} -> {}; m={} n={} k={}",
                              l.source->operands[0]->type.str(),
                              l.source->operands[1]->type.str(),
                              l.source->result()->type.str(), g.m, g.n, g.k);
  if (g.trans_a)
    s += " trans_a";
  if (g.trans_b)
    s += " trans_b";
  if (g.batch() > 1)
    s += fmt::format(" batch={}", g.batch());
  return s;
}

std::string dims_str(const Shape &d) {
  return fmt::format("[{}]", fmt::join(d, ","));
}

// The loop plan of a fused kernel, in one line.
std::string loop_str(const KernelPlan &k) {
  if (k.kind == KernelPlan::Kind::reduction) {
    const ReductionPlan &r = k.red;
    return fmt::format("loop: reduce {} over {}: outer {} x reduced {} x "
                       "inner {} (tile {}, {} tiles); {} work items",
                       op_name(r.op), dims_str(r.dims), r.o_total, r.r_total,
                       r.i_total, r.tile, r.n_tiles, k.work);
  }
  std::vector<std::string> segs;
  for (const SegmentPlan &sp : k.segments)
    segs.push_back(dims_str(sp.dims));
  return fmt::format("loop: {} segment{} {}; {} work items", k.segments.size(),
                     k.segments.size() == 1 ? "" : "s", fmt::join(segs, " "),
                     k.work);
}

} // namespace

std::string
format_plan(const ExecutionPlan &p,
            const std::function<std::string(const Launch &)> &detail) {
  const MemoryPlan &m = p.memory;
  std::string s =
      fmt::format("// plan @{}: {} launches ({} gemm, {} kernel, {} copy)\n",
                  p.graph->name, p.launches.size(), p.count(LaunchKind::gemm),
                  p.count(LaunchKind::kernel), p.count(LaunchKind::copy));
  s += fmt::format("// {}\n", memory_plan_summary(m));
  s += fmt::format("// buffers: {} inputs, {} outputs, {} constants, {} "
                   "staging, {} views ({} transposes folded into gemms)\n",
                   p.graph->inputs().size(), p.graph->outputs.size(),
                   m.constants.size(), p.staging.size(), m.views.size(),
                   m.folded.size());
  double flops = 0;
  int64_t bytes = 0;
  for (size_t i = 0; i < p.launches.size(); ++i) {
    const Launch &l = p.launches[i];
    std::vector<std::string> args;
    for (const BufferRef &b : l.args)
      args.push_back(buffer_str(b));
    std::string what;
    switch (l.kind) {
    case LaunchKind::gemm:
      what = fmt::format("gemm {}: {}", l.name, gemm_str(l));
      break;
    case LaunchKind::kernel:
      what = fmt::format("kernel {}: ({}) -> ({})", l.name,
                         types_str(l.source->operands),
                         types_str(l.source->results));
      break;
    case LaunchKind::copy:
      what = fmt::format("copy {}", l.name);
      break;
    }
    s += fmt::format("{:3}: {} | args {} | {} B, {} FLOP\n", i, what,
                     fmt::join(args, ", "), l.bytes,
                     static_cast<int64_t>(l.flops));
    if (l.loop)
      s += fmt::format("       {}\n", loop_str(*l.loop));
    if (detail)
      if (std::string d = detail(l); !d.empty())
        s += fmt::format("       {}\n", d);
    flops += l.flops;
    bytes += l.bytes;
  }
  s += fmt::format("// total: {} launches, {} B moved, {} FLOP\n",
                   p.launches.size(), bytes, static_cast<int64_t>(flops));
  return s;
}

} // namespace kiln
