#include "passes/kernel_summary.h"

#include <fmt/format.h>

#include <unordered_set>

namespace kiln {

namespace {

bool folded_transpose(
    const Node &n,
    const std::unordered_map<const Value *, std::vector<Node *>> &users,
    const std::unordered_set<const Value *> &outputs) {
  if (n.op != Op::Transpose || n.result()->type.rank() != 2 ||
      outputs.count(n.result()))
    return false;
  auto it = users.find(n.result());
  if (it == users.end())
    return false;
  for (const Node *u : it->second)
    if (u->op != Op::Matmul)
      return false;
  return true;
}

} // namespace

std::vector<KernelInfo> summarize_kernels(const Graph &g) {
  auto users = g.users();
  std::unordered_set<const Value *> outputs;
  for (const GraphOutput &o : g.outputs)
    outputs.insert(o.value);
  std::vector<KernelInfo> out;
  for (auto &np : g.nodes()) {
    const Node &n = *np;
    if (n.op == Op::Reshape || folded_transpose(n, users, outputs))
      continue;
    if (n.op == Op::Constant && n.result()->type.rank() == 0)
      continue;
    KernelInfo k;
    std::vector<std::string> ops;
    for (const Value *o : n.operands) {
      const Value *src = o;
      if (o->def && folded_transpose(*o->def, users, outputs)) {
        ops.push_back("transpose");
        src = o->def->operands[0];
      }
      k.bytes_read += static_cast<int64_t>(src->type.bytes());
    }
    for (const Value *r : n.results)
      k.bytes_written += static_cast<int64_t>(r->type.bytes());
    if (n.op == Op::Fused) {
      k.kind = n.attrs.get_str("kind");
      for (auto &b : n.body->nodes())
        if (b->op != Op::Constant)
          ops.emplace_back(b->info().name);
    } else {
      k.kind = n.op == Op::Matmul ? "gemm" : std::string(n.info().name);
      ops.insert(ops.begin(), std::string(n.info().name));
    }
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
