// Lowering an optimized graph to its execution plan (see plan.h): the buffer
// assignment (plan_memory), then one launch per node that does work, in node
// order, then the end-of-run copies.
#include "plan/plan.h"

#include "ir/error.h"
#include "ir/gather.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_set>

namespace kiln {

namespace {

// Element offsets of each batch index of an operand with batch shape
// `from` broadcast to `to`, for matrices of `mat` elements.
std::vector<int64_t> batch_offsets(const Shape &from, const Shape &to,
                                   int64_t mat) {
  auto st = broadcast_strides(from, to);
  std::vector<int64_t> offs;
  for (int64_t p = 0; p < numel(to); ++p) {
    int64_t rem = p, off = 0;
    for (size_t a = to.size(); a-- > 0;) {
      off += (rem % to[a]) * st[a];
      rem /= to[a];
    }
    offs.push_back(off * mat);
  }
  return offs;
}

// The constant step of an arithmetic sequence, or -1.
int64_t constant_stride(const std::vector<int64_t> &offs) {
  if (offs.size() < 2)
    return 0;
  int64_t s = offs[1] - offs[0];
  for (size_t i = 1; i < offs.size(); ++i)
    if (offs[i] - offs[i - 1] != s)
      return -1;
  return s;
}

GemmDesc describe_gemm(const Node &n, const MemoryPlan &mem, const Value *&sa,
                       const Value *&sb) {
  const Value *a = n.operands[0], *b = n.operands[1];
  GemmDesc g;
  g.f64 = n.result()->type.dtype == DType::f64;
  const Shape &as = a->type.shape, &bs = b->type.shape;
  const Shape &cs = n.result()->type.shape;
  g.m = as[as.size() - 2];
  g.k = as.back();
  g.n = bs.back();
  auto folded = [&](const Value *v) {
    return v->def && mem.folded.count(v->def) ? v->def->operands[0] : nullptr;
  };
  sa = a;
  sb = b;
  if (const Value *t = folded(a)) {
    g.trans_a = true;
    sa = t;
  }
  if (const Value *t = folded(b)) {
    g.trans_b = true;
    sb = t;
  }
  g.lda = std::max<int64_t>(1, g.trans_a ? g.m : g.k);
  g.ldb = std::max<int64_t>(1, g.trans_b ? g.k : g.n);
  Shape batch(cs.begin(), cs.end() - 2);
  g.a_off = batch_offsets(Shape(as.begin(), as.end() - 2), batch, g.m * g.k);
  g.b_off = batch_offsets(Shape(bs.begin(), bs.end() - 2), batch, g.k * g.n);
  g.c_off = batch_offsets(batch, batch, g.m * g.n);
  g.stride_a = constant_stride(g.a_off);
  g.stride_b = constant_stride(g.b_off);
  g.stride_c = constant_stride(g.c_off);
  return g;
}

// What a launch moves and computes: each operand and result once; 2mnk per
// GEMM, one FLOP per body op and element for a kernel (an estimate: exp
// counts as one), one per element for a standalone op.
void describe_work(const Node &n, Launch &l) {
  std::unordered_set<const Value *> seen;
  for (const auto *vs : {&n.operands, &n.results})
    for (const Value *v : *vs)
      if (seen.insert(v).second)
        l.bytes += static_cast<int64_t>(v->type.bytes());
  std::string kind;
  if (n.op == Op::Matmul) {
    kind = "gemm";
    const Shape &a = n.operands[0]->type.shape;
    l.flops = 2.0 * static_cast<double>(numel(n.result()->type.shape)) *
              static_cast<double>(a.back());
  } else if (auto k = fused_kind_of(n)) {
    kind = fused_kind_name(*k);
    double elems = 0;
    for (const auto *vs : {&n.operands, &n.results})
      for (const Value *v : *vs)
        elems = std::max(elems, static_cast<double>(numel(v->type.shape)));
    l.flops = elems * static_cast<double>(n.body->nodes().size());
  } else {
    kind = std::string(op_name(n.op));
    l.flops = static_cast<double>(numel(n.result()->type.shape));
  }
  l.name = fmt::format("%{} ({})",
                       n.result()->name.empty() ? std::to_string(n.result()->id)
                                                : n.result()->name,
                       kind);
}

// Ops that become one-node fused kernels.
bool wrapped_kernel(const Node &n) {
  return n.op == Op::Iota || n.info().has(kElementwise) ||
         n.info().has(kReduction);
}

} // namespace

int ExecutionPlan::count(LaunchKind k) const {
  return static_cast<int>(
      std::count_if(launches.begin(), launches.end(),
                    [k](const Launch &l) { return l.kind == k; }));
}

void add_label_ranges(Graph &g) {
  for (const auto &n : g.nodes()) {
    // one_hot's labels lie in [0, num_classes), gather's and scatter_add's
    // indices in [0, the size of the axis they index).
    int64_t hi = 0;
    Value *labels = nullptr;
    if (n->op == Op::OneHot) {
      labels = n->operands[0];
      hi = n->attrs.get_int("num_classes");
    } else if (n->op == Op::Gather || n->op == Op::ScatterAdd) {
      labels = n->operands[n->op == Op::Gather ? 1 : 0];
      hi = gather_geometry(*n).len;
    } else {
      continue;
    }
    int i = g.input_index(labels);
    if (i < 0 || g.inputs()[i].kind != InputKind::data)
      continue;
    InputRange r{0, hi, range_reader(*n)};
    if (const auto &old = g.inputs()[i].range)
      r = {std::max(old->lo, r.lo), std::min(old->hi, r.hi),
           old->reader.empty() ? r.reader : old->reader};
    g.set_input_range(i, r);
  }
}

ExecutionPlan lower(const Graph &g) {
  ExecutionPlan p;
  p.graph = &g;
  p.memory = plan_memory(g);
  const MemoryPlan &mem = p.memory;
  auto at = [&](const Value *v) { return mem.where.at(v); };

  for (const auto &np : g.nodes()) {
    const Node &n = *np;
    if (n.op == Op::Reshape || n.op == Op::Constant || mem.folded.count(&n))
      continue;
    Launch l;
    l.source = &n;
    describe_work(n, l);
    if (n.op == Op::Matmul) {
      l.kind = LaunchKind::gemm;
      const Value *sa = nullptr, *sb = nullptr;
      l.gemm = describe_gemm(n, mem, sa, sb);
      l.args = {at(sa), at(sb), at(n.result())};
      p.launches.push_back(std::move(l));
      continue;
    }
    l.kind = LaunchKind::kernel;
    if (n.op == Op::Fused) {
      l.kernel = &n;
    } else if (wrapped_kernel(n)) {
      p.wrappers.push_back(wrap_as_fused(n));
      l.kernel = p.wrappers.back()->nodes()[0].get();
    } else if (n.op == Op::BroadcastTo) {
      p.wrappers.push_back(
          make_copy_kernel(n.operands[0]->type, n.result()->type.shape));
      l.kernel = p.wrappers.back()->nodes()[0].get();
    } else if (n.info().has(kStandaloneKernel)) {
      l.kernel = &n;
    } else {
      fail_at_node(n,
                   fmt::format("lower: op {} has no kernel on any target{}",
                               op_name(n.op),
                               n.op == Op::Conv2d || n.op == Op::AvgPool2d
                                   ? " (the decompose-windows pass rewrites it)"
                                   : ""));
    }
    for (const Value *v : n.operands)
      l.args.push_back(at(v));
    for (const Value *v : n.results)
      l.args.push_back(at(v));
    l.fused = fused_kind_of(*l.kernel);
    if (l.fused) {
      auto it = mem.kernel_plans.find(l.kernel);
      if (it != mem.kernel_plans.end()) {
        l.loop = it->second;
      } else {
        try {
          l.loop = std::make_shared<const KernelPlan>(plan_kernel(*l.kernel));
        } catch (const Error &e) {
          fail_at_node(n, fmt::format("lower: {}", e.what()));
        }
      }
    }
    p.launches.push_back(std::move(l));
  }

  // End-of-run copies: into output buffers first, then into inputs (through
  // a staging buffer when the source is itself an input, which a later copy
  // may overwrite).
  std::vector<Launch> to_inputs;
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const GraphOutput &o = g.outputs[i];
    BufferRef src = at(o.value);
    BufferRef dst = o.alias >= 0
                        ? BufferRef{Space::input, o.alias, 0}
                        : BufferRef{Space::output, static_cast<int>(i), 0};
    if (src == dst)
      continue;
    Launch c;
    c.kind = LaunchKind::copy;
    c.copy_bytes = c.bytes = static_cast<int64_t>(o.value->type.bytes());
    c.name =
        fmt::format("output {} ({})", i, o.alias >= 0 ? "copy back" : "copy");
    if (o.alias < 0) {
      c.args = {src, dst};
      p.launches.push_back(std::move(c));
    } else if (src.space == Space::input) {
      BufferRef st{Space::staging, static_cast<int>(p.staging.size()), 0};
      p.staging.push_back(o.value->type);
      Launch first = c;
      first.args = {src, st};
      p.launches.push_back(std::move(first));
      c.args = {st, dst};
      to_inputs.push_back(std::move(c));
    } else {
      c.args = {src, dst};
      to_inputs.push_back(std::move(c));
    }
  }
  for (Launch &c : to_inputs)
    p.launches.push_back(std::move(c));
  return p;
}

} // namespace kiln
