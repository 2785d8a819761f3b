// The CUDA emitter's entry points: which nodes get kernels, elementwise and
// multi-tensor fused kernels, and the one translation unit of a graph.
// Reductions are in cuda_emit_reduce.cpp, the standalone ops' kernels
// (layout, window, gather, one_hot, random draws) in cuda_emit_layout.cpp.
#include "codegen/cuda_emitter.h"
#include "codegen/cuda_emit_common.h"

#include "ir/error.h"
#include "ir/fused_kind.h"
#include "ir/gather.h"
#include "ir/infer.h"
#include "ir/scalar_expr.h"
#include "ir/window.h"
#include "plan/kernel_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>
#include <numeric>

namespace kiln::cuda {

using namespace detail;

namespace {

constexpr int kBlock = 256;
// A multi-tensor block covers this many elements (256 threads x 4 vector
// lanes x 4 iterations), so a chain gets ceil(numel / kMtChunk) blocks.
constexpr int64_t kMtChunk = 4096;

std::string type_list(const Graph &body) {
  std::vector<std::string> ts;
  for (const GraphOutput &o : body.outputs)
    ts.push_back(o.value->type.str());
  return fmt::format("{}", fmt::join(ts, ", "));
}

// `space` is the node's result shape: a body output's, except for a copy
// kernel (plan/kernel_plan.h, make_copy_kernel) whose body output is its
// input, broadcast to the space when stored.
CudaKernel emit_elementwise(const Graph &body, const std::string &name,
                            const std::string &what, const Shape &space) {
  if (body.outputs.empty())
    fail("cuda emitter: {}: elementwise body has no outputs", name);
  CudaKernel k;
  k.name = name;
  k.summary =
      fmt::format("{} [{}] -> {}", what, op_list(body), type_list(body));
  std::vector<std::string> params;
  LoopSpec s;
  s.body = &body;
  s.space = space;
  for (size_t i = 0; i < body.inputs().size(); ++i) {
    const Value *v = body.inputs()[i].value;
    params.push_back(
        pointer_param(v->type.dtype, fmt::format("in{}", i), true));
    s.inputs.emplace_back(v, fmt::format("in{}", i));
  }
  for (size_t i = 0; i < body.outputs.size(); ++i) {
    const Value *v = body.outputs[i].value;
    params.push_back(
        pointer_param(v->type.dtype, fmt::format("out{}", i), false));
    s.outputs.emplace_back(v, fmt::format("out{}", i));
  }
  s.numel = fmt::format("{}LL", numel(space));
  s.first = "first";
  s.stride = "stride";
  k.kernel = kernel_head(name, k.summary, params, kBlock);
  k.kernel += emit_elementwise_loop(s);
  k.kernel += "}\n";
  // One work unit is a group of 4 elements.
  k.launch.units = std::max<int64_t>(1, (numel(space) + 3) / 4);
  k.launch.units_per_block = kBlock;
  return k;
}

// A chain of a multi-tensor body, extracted as its own graph so that chains
// of the same structure print the same code (value ids restart at 0).
struct Chain {
  std::unique_ptr<Graph> graph;
  std::vector<int> inputs;  // body input index of each chain input
  std::vector<int> outputs; // body output index of each chain output
  Shape space;
};

// The chains are the plan's (plan/kernel_plan.h, output_chains): the
// `chains` attribute fuse-optimizer writes, checked against the body, so
// both targets split a multi_tensor node alike.
std::vector<Chain> split_chains(const Node &n, const std::string &name) {
  const Graph &body = *n.body;
  std::vector<std::vector<int>> ordered;
  try {
    ordered = output_chains(n);
  } catch (const Error &e) {
    fail("cuda emitter: {}: {}", name, e.what());
  }
  std::vector<Chain> chains;
  for (const auto &outs : ordered) {
    Chain c;
    c.outputs = outs;
    c.space = body.outputs[outs[0]].value->type.shape;
    std::vector<const Value *> targets;
    for (int o : outs) {
      if (body.outputs[o].value->type.shape != c.space)
        fail("cuda emitter: {}: multi_tensor chain mixes shapes {} and {}",
             name, shape_str(c.space),
             shape_str(body.outputs[o].value->type.shape));
      targets.push_back(body.outputs[o].value);
    }
    auto need = needed_values(body, targets);
    c.graph = std::make_unique<Graph>("chain");
    std::unordered_map<const Value *, Value *> map;
    for (size_t i = 0; i < body.inputs().size(); ++i) {
      const Value *v = body.inputs()[i].value;
      if (!need.count(v))
        continue;
      map[v] = c.graph->add_input(fmt::format("x{}", c.inputs.size()), v->type);
      c.inputs.push_back(static_cast<int>(i));
    }
    for (auto &np : body.nodes()) {
      bool wanted = false;
      for (const Value *r : np->results)
        wanted = wanted || need.count(r);
      if (wanted)
        c.graph->copy_node(*np, map);
    }
    for (int o : outs)
      c.graph->add_output(map.at(body.outputs[o].value));
    chains.push_back(std::move(c));
  }
  return chains;
}

CudaKernel emit_multi_tensor(const Node &n, const std::string &name) {
  const Graph &body = *n.body;
  std::vector<Chain> chains = split_chains(n, name);
  CudaKernel k;
  k.name = name;
  k.multi_tensor = true;
  k.summary = fmt::format("multi_tensor: {} chains [{}] -> {}", chains.size(),
                          op_list(body), type_list(body));
  std::vector<std::string> variants; // distinct chain code
  int64_t blocks = 0;
  for (const Chain &c : chains) {
    const Graph &g = *c.graph;
    LoopSpec s;
    s.body = &g;
    s.space = c.space;
    s.indent = "    ";
    s.prefix = "v";
    std::string code;
    int slot = 0;
    bool shape_free = true;
    for (size_t i = 0; i < g.inputs().size(); ++i) {
      const Value *v = g.inputs()[i].value;
      std::string p = fmt::format("p{}", slot);
      line(code, s.indent,
           fmt::format("{} = static_cast<const {} *>(p[{}]);",
                       pointer_param(v->type.dtype, p, true),
                       cuda_storage_type(v->type.dtype), slot));
      s.inputs.emplace_back(v, p);
      if (v->type.numel() != 1 && v->type.shape != c.space)
        shape_free = false;
      ++slot;
    }
    for (size_t o = 0; o < g.outputs.size(); ++o) {
      const Value *v = g.outputs[o].value;
      std::string p = fmt::format("p{}", slot);
      line(code, s.indent,
           fmt::format("{} = static_cast<{} *>(p[{}]);",
                       pointer_param(v->type.dtype, p, false),
                       cuda_storage_type(v->type.dtype), slot));
      s.outputs.emplace_back(v, p);
      ++slot;
    }
    // Chains whose inputs are full-size or scalar run on the table's
    // element count, so chains of one structure share code whatever their
    // shapes; broadcasting inputs bake the chain's shape in.
    s.numel = shape_free ? std::string("e.numel")
                         : fmt::format("{}LL", numel(c.space));
    s.first = "first";
    s.stride = "stride";
    code += emit_elementwise_loop(s);
    auto it = std::find(variants.begin(), variants.end(), code);
    int variant = static_cast<int>(it - variants.begin());
    if (it == variants.end())
      variants.push_back(code);
    MtEntry e;
    e.numel = numel(c.space);
    e.block_begin = blocks;
    e.variant = variant;
    e.ptr_offset = static_cast<int32_t>(k.mt_slots.size());
    k.mt_entries.push_back(e);
    for (int i : c.inputs)
      k.mt_slots.push_back(i);
    for (int o : c.outputs)
      k.mt_slots.push_back(-o - 1);
    blocks += std::max<int64_t>(1, (e.numel + kMtChunk - 1) / kMtChunk);
  }
  std::string src = fmt::format("// {}: {}\n", name, k.summary);
  src += fmt::format(
      "extern \"C\" __global__ void __launch_bounds__({}) {}(const "
      "kiln_mt_entry *__restrict__ table, void *const *__restrict__ ptrs) "
      "{{\n",
      kBlock, name);
  src += fmt::format("  // The chain of this block: the last entry whose "
                     "block_begin <= blockIdx.x.\n");
  src += fmt::format("  int lo = 0, hi = {};\n", chains.size() - 1);
  src += "  while (lo < hi) {\n"
         "    const int mid = (lo + hi + 1) >> 1;\n"
         "    if (table[mid].block_begin <= (long long)blockIdx.x)\n"
         "      lo = mid;\n"
         "    else\n"
         "      hi = mid - 1;\n"
         "  }\n"
         "  const kiln_mt_entry e = table[lo];\n";
  src += fmt::format("  const long long end = lo + 1 < {} ? table[lo + "
                     "1].block_begin : (long long)gridDim.x;\n",
                     chains.size());
  src += "  const long long first = ((long long)blockIdx.x - e.block_begin) * "
         "blockDim.x + threadIdx.x;\n"
         "  const long long stride = (end - e.block_begin) * blockDim.x;\n"
         "  void *const *p = ptrs + e.ptr_offset;\n"
         "  switch (e.variant) {\n";
  for (size_t v = 0; v < variants.size(); ++v) {
    src += fmt::format("  case {}: {{\n", v);
    src += variants[v];
    src += "    break;\n  }\n";
  }
  src += "  }\n}\n";
  k.kernel = src;
  k.launch.exact_grid = blocks;
  k.launch.units = blocks;
  return k;
}

} // namespace

namespace detail {

std::string param_list(const Node &n) {
  std::vector<std::string> ps;
  for (size_t k = 0; k < n.operands.size(); ++k)
    ps.push_back(
        pointer_param(n.operands[k]->type.dtype, fmt::format("in{}", k), true));
  for (size_t k = 0; k < n.results.size(); ++k)
    ps.push_back(pointer_param(n.results[k]->type.dtype,
                               fmt::format("out{}", k), false));
  return fmt::format("{}", fmt::join(ps, ", "));
}

std::string kernel_head(const std::string &name, const std::string &summary,
                        const std::vector<std::string> &params,
                        int block_threads) {
  std::string s = fmt::format("// {}: {}\n", name, summary);
  s += fmt::format("extern \"C\" __global__ void __launch_bounds__({}) "
                   "{}({}) {{\n",
                   block_threads, name, fmt::join(params, ", "));
  s += "  const long long first = (long long)blockIdx.x * blockDim.x + "
       "threadIdx.x;\n"
       "  const long long stride = (long long)gridDim.x * blockDim.x;\n";
  return s;
}

} // namespace detail

std::string CudaKernel::source() const {
  return std::string(cuda_prelude()) + "\n" + kernel;
}

bool cuda_has_kernel(const Node &n) {
  return n.op != Op::Matmul && n.op != Op::Reshape;
}

CudaKernel emit_cuda_kernel(const Node &n, const std::string &name) {
  try {
    if (n.op == Op::Fused) {
      if (!n.body)
        fail("fused node without a body");
      std::optional<FusedKind> kind = fused_kind_of(n);
      if (!kind)
        fail("fused node without a known kind (elementwise, reduction or "
             "multi_tensor)");
      switch (*kind) {
      case FusedKind::elementwise:
        return emit_elementwise(*n.body, name, "fused elementwise",
                                n.result()->type.shape);
      case FusedKind::reduction:
        return emit_reduction_kernel(*n.body, name, "fused reduction");
      case FusedKind::multi_tensor:
        return emit_multi_tensor(n, name);
      }
    }
    if (n.info().has(kElementwise))
      return emit_elementwise(*one_node_body(n), name,
                              std::string(op_name(n.op)),
                              n.result()->type.shape);
    if (n.info().has(kReduction))
      return emit_reduction_kernel(*one_node_body(n), name,
                                   std::string(op_name(n.op)));
    return emit_layout_kernel(n, name);
  } catch (const Error &e) {
    std::string msg = e.what();
    if (msg.rfind("cuda emitter", 0) == 0)
      throw;
    fail("cuda emitter: {} ({}): {}", name, op_name(n.op), msg);
  }
}

std::string cuda_kernel_name(size_t index, const Node &source) {
  std::string what(op_name(source.op));
  if (auto kind = fused_kind_of(source))
    what += "_" + std::string(fused_kind_name(*kind));
  return fmt::format("kiln_k{}_{}", index, what);
}

std::string cuda_launch_detail(const Node &kernel_node,
                               const std::string &name) {
  CudaKernel k = emit_cuda_kernel(kernel_node, name);
  auto shape = [](const CudaLaunch &l) {
    std::string grid =
        l.exact_grid > 0
            ? fmt::format("grid={}", l.exact_grid)
            : fmt::format("grid<={}", std::max<int64_t>(
                                          1, (l.units + l.units_per_block - 1) /
                                                 l.units_per_block));
    return fmt::format("{} block={}x{} units={}", grid, l.block_x, l.block_y,
                       l.units);
  };
  std::string s = fmt::format("cuda: {} {}", k.name, shape(k.launch));
  if (k.multi_tensor)
    s += fmt::format(" chains={}", k.mt_entries.size());
  if (!k.finish_name.empty())
    s += fmt::format(" scratch={}B, then {} {}", k.scratch_bytes, k.finish_name,
                     shape(k.finish_launch));
  return s;
}

std::vector<CudaKernel> emit_cuda_kernels(const Graph &g) {
  std::vector<CudaKernel> ks;
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const Node &n = *g.nodes()[i];
    if (!cuda_has_kernel(n))
      continue;
    std::string what(op_name(n.op));
    if (auto kind = fused_kind_of(n))
      what += "_" + std::string(fused_kind_name(*kind));
    ks.push_back(emit_cuda_kernel(n, fmt::format("kiln_k{}_{}", i, what)));
  }
  return ks;
}

std::string emit_cuda_translation_unit(const Graph &g) {
  std::vector<CudaKernel> ks = emit_cuda_kernels(g);
  std::string s = fmt::format("// Kernels of graph @{}, generated by kiln "
                              "(codegen/cuda_emitter.cpp): {} kernels.\n",
                              g.name, ks.size());
  s += cuda_prelude();
  for (const CudaKernel &k : ks)
    s += "\n" + k.kernel;
  return s;
}

} // namespace kiln::cuda
