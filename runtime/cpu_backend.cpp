// The CPU backend's compile step: graph -> launches, locations and memory
// plan (see cpu_backend.h for the layout), and the replay loop.
#include "runtime/cpu_backend.h"

#include "codegen/llvm_kernel.h"
#include "codegen/llvm_plan.h"
#include "ir/error.h"
#include "ir/profile.h"
#include "passes/memory_plan.h"
#include "runtime/cpu_host_ops.h"
#include "runtime/cpu_thread_pool.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <unordered_map>
#include <unordered_set>

namespace kiln {

ThreadPool &ThreadPool::global() {
  static ThreadPool *pool = [] {
    auto *p = new ThreadPool(0);
    set_blas_threads(1); // GEMMs run on the pool (run_gemm)
    return p;
  }();
  return *pool;
}

namespace {

enum class Space : uint8_t { input, arena, output, constant, staging };

struct Loc {
  Space space = Space::arena;
  int index = 0;
  size_t offset = 0; // bytes
  bool operator==(const Loc &) const = default;
};

// What a launch is, for profiles (ir/profile.h).
struct LaunchInfo {
  std::string name, kind;
  int64_t bytes = 0;
  double flops = 0;
};

struct Launch {
  std::vector<Loc> args;
  std::function<void(void *const *)> fn;
  LaunchInfo info = {};
};

// The launch made for node n: named after its first result, its bytes each
// operand and result once, its FLOPs 2mnk per GEMM and one per body op and
// element for a kernel (an estimate: exp counts as one).
LaunchInfo describe_launch(const Node &n) {
  LaunchInfo li;
  li.name = fmt::format("%{}", n.result()->name.empty()
                                   ? std::to_string(n.result()->id)
                                   : n.result()->name);
  std::unordered_set<const Value *> seen;
  for (const auto *vs : {&n.operands, &n.results})
    for (const Value *v : *vs)
      if (seen.insert(v).second)
        li.bytes += static_cast<int64_t>(v->type.bytes());
  if (n.op == Op::Matmul) {
    li.kind = "gemm";
    const Shape &a = n.operands[0]->type.shape;
    li.flops = 2.0 * static_cast<double>(numel(n.result()->type.shape)) *
               static_cast<double>(a.back());
  } else if (n.op == Op::Fused) {
    li.kind = n.attrs.get_str("kind");
    double elems = 0;
    for (const Value *v : n.operands)
      elems = std::max(elems, static_cast<double>(numel(v->type.shape)));
    for (const Value *v : n.results)
      elems = std::max(elems, static_cast<double>(numel(v->type.shape)));
    li.flops = elems * static_cast<double>(n.body->nodes().size());
  } else {
    li.kind = std::string(op_name(n.op));
    li.flops = static_cast<double>(numel(n.result()->type.shape));
  }
  li.name += fmt::format(" ({})", li.kind);
  return li;
}

struct Copy {
  Loc src, dst;
  size_t bytes;
};

bool swaps_last_two(const Node &n) {
  const auto &perm = n.attrs.get_ints("perm");
  int r = static_cast<int>(perm.size());
  if (r < 2)
    return false;
  for (int a = 0; a < r - 2; ++a)
    if (perm[a] != a)
      return false;
  return perm[r - 2] == r - 1 && perm[r - 1] == r - 2;
}

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

class CpuExecutable : public Executable {
public:
  CpuExecutable(const Graph &g, std::shared_ptr<ThreadPool> pool)
      : g_(g.clone()), keep_pool_(std::move(pool)), pool_(*keep_pool_) {
    build();
  }

  std::vector<Array> run(std::span<Array> inputs) override {
    check_inputs(*g_, inputs);
    for (size_t i = 0; i < inputs.size(); ++i)
      input_ptrs_[i] = static_cast<std::byte *>(inputs[i].data());
    bool profiling = profile::enabled();
    for (const Launch &l : launches_) {
      for (size_t k = 0; k < l.args.size(); ++k)
        scratch_[k] = resolve(l.args[k]);
      double t0 = profiling ? profile::now_us() : 0;
      l.fn(scratch_.data());
      if (profiling)
        profile::record({l.info.name, "launch", t0, profile::now_us() - t0,
                         l.info.kind, l.info.bytes, l.info.flops});
    }
    for (const Copy &c : copies_)
      if (c.bytes)
        std::memmove(resolve(c.dst), resolve(c.src), c.bytes);
    std::vector<Array> out;
    out.reserve(g_->outputs.size());
    for (size_t i = 0; i < g_->outputs.size(); ++i) {
      int alias = g_->outputs[i].alias;
      out.push_back(alias >= 0 ? inputs[alias] : outputs_[i]);
    }
    return out;
  }

  CpuExecutableStats stats;

private:
  void *resolve(const Loc &l) {
    std::byte *base = nullptr;
    switch (l.space) {
    case Space::input:
      base = input_ptrs_[l.index];
      break;
    case Space::arena:
      base = static_cast<std::byte *>(arena_.data());
      break;
    case Space::output:
      base = static_cast<std::byte *>(outputs_[l.index].data());
      break;
    case Space::constant:
      base = static_cast<std::byte *>(constants_[l.index].data());
      break;
    case Space::staging:
      base = static_cast<std::byte *>(staging_[l.index].data());
      break;
    }
    return base + l.offset;
  }

  void build();
  bool inplace_safe(const Value *v, int alias);
  void add_kernel(const Node &kernel_node, std::vector<Loc> args);
  void add_matmul(const Node &n);

  std::unique_ptr<Graph> g_;
  std::shared_ptr<ThreadPool> keep_pool_;
  ThreadPool &pool_;
  std::vector<std::unique_ptr<Graph>> wraps_;
  std::vector<Launch> launches_;
  std::vector<Copy> copies_;
  Array arena_;
  std::vector<Array> outputs_, constants_, staging_;
  std::vector<std::byte *> input_ptrs_;
  std::vector<void *> scratch_;

  // Analysis state used while building.
  std::unordered_map<const Value *, int> step_; // defining node's index
  std::unordered_map<const Value *, const Value *> root_;    // view -> storage
  std::unordered_set<const Node *> folded_;                  // transposes
  std::unordered_map<const Value *, std::vector<int>> uses_; // root -> steps
  std::unordered_map<const Value *, Loc> loc_;
  std::unordered_map<const Node *, KernelPlan> plans_; // see inplace_safe
  LlvmCompiler compiler_;
  std::vector<KernelFn> fns_;
};

const Value *root_of(const std::unordered_map<const Value *, const Value *> &m,
                     const Value *v) {
  auto it = m.find(v);
  return it == m.end() ? v : it->second;
}

// An aliased output v can be written into input `alias` by its producer D
// when nothing reads the input's old value after D, and D reads it only at
// the index it writes (same shape, within v's own elementwise segment, or
// an extra output of a fused reduction, whose single pass reads each point
// of the reduced operand's space once and then writes it).
bool CpuExecutable::inplace_safe(const Value *v, int alias) {
  const Node *d = v->def;
  if (!d || folded_.count(d) || d->op == Op::Reshape || d->op == Op::Constant)
    return false;
  bool fused_reduction =
      d->op == Op::Fused && d->attrs.get_str("kind") == "reduction";
  bool elementwise =
      d->info().has(kElementwise) || (d->op == Op::Fused && !fused_reduction);
  bool extra = fused_reduction && v->index >= 1;
  if (!elementwise && !extra)
    return false;
  const Value *w = g_->inputs()[alias].value;
  if (w->type != v->type)
    return false;
  int ds = step_.at(v);
  for (int s : uses_[w])
    if (s > ds)
      return false;
  // Reads by D itself.
  std::vector<int> ks;
  for (size_t k = 0; k < d->operands.size(); ++k)
    if (root_of(root_, d->operands[k]) == w) {
      if (d->operands[k]->type.shape != v->type.shape)
        return false;
      ks.push_back(static_cast<int>(k));
    }
  if (ks.empty() || d->op != Op::Fused)
    return true;
  if (extra) // w has v's shape (checked above): read where v is written
    return true;
  // One plan per kernel: a multi_tensor kernel is asked once per aliased
  // output, and planning it each time was quadratic in the model's depth.
  auto pi = plans_.find(d);
  if (pi == plans_.end())
    pi = plans_.emplace(d, plan_kernel(*d)).first;
  const KernelPlan &p = pi->second;
  for (const SegmentPlan &s : p.segments) {
    bool mine = std::find(s.outputs.begin(), s.outputs.end(), v->index) !=
                s.outputs.end();
    for (int k : ks)
      if (!mine && !s.in_strides[k].empty())
        return false;
  }
  return true;
}

void CpuExecutable::add_kernel(const Node &kn, std::vector<Loc> args) {
  int idx = compiler_.add(kn);
  const KernelInfo &info = compiler_.info(idx);
  int64_t work = info.work;
  int64_t grain = std::max<int64_t>(
      1, static_cast<int64_t>(32768.0 / std::max(1.0, info.bytes_per_item)));
  launches_.push_back(
      {std::move(args), [this, idx, work, grain](void *const *p) {
         KernelFn fn = fns_[idx];
         pool_.parallel_for(work, grain,
                            [fn, p](int64_t b, int64_t e) { fn(p, b, e); });
       }});
  ++stats.kernel_launches;
}

void CpuExecutable::add_matmul(const Node &n) {
  const Value *a = n.operands[0], *b = n.operands[1];
  GemmCall g;
  g.f64 = n.result()->type.dtype == DType::f64;
  const Shape &as = a->type.shape, &bs = b->type.shape;
  const Shape &cs = n.result()->type.shape;
  g.m = as[as.size() - 2];
  g.k = as.back();
  g.n = bs.back();
  auto folded = [&](const Value *v) {
    return v->def && folded_.count(v->def) ? v->def->operands[0] : nullptr;
  };
  const Value *sa = a, *sb = b;
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
  size_t cbytes = n.result()->type.bytes();
  launches_.push_back({{loc_.at(sa), loc_.at(sb), loc_.at(n.result())},
                       [g, cbytes, this](void *const *p) {
                         if (g.m == 0 || g.n == 0)
                           return;
                         if (g.k == 0) {
                           std::memset(p[2], 0, cbytes);
                           return;
                         }
                         run_gemm(g, p[0], p[1], p[2], pool_);
                       }});
  ++stats.gemm_launches;
}

void CpuExecutable::build() {
  const Graph &g = *g_;
  const auto &nodes = g.nodes();
  int n_steps = static_cast<int>(nodes.size());
  auto users = g.users();
  std::unordered_set<const Value *> outputs;
  for (const GraphOutput &o : g.outputs)
    outputs.insert(o.value);

  // Views and folded transposes share their operand's storage.
  for (int i = 0; i < n_steps; ++i) {
    const Node &n = *nodes[i];
    for (const Value *r : n.results)
      step_[r] = i;
    if (n.op == Op::Reshape) {
      root_[n.result()] = root_of(root_, n.operands[0]);
    } else if (n.op == Op::Transpose && swaps_last_two(n) &&
               !outputs.count(n.result())) {
      auto &us = users[n.result()];
      bool only_matmul = !us.empty();
      for (const Node *u : us)
        only_matmul = only_matmul && u->op == Op::Matmul;
      if (only_matmul) {
        folded_.insert(&n);
        root_[n.result()] = root_of(root_, n.operands[0]);
        ++stats.folded_transposes;
      }
    }
  }
  for (int i = 0; i < n_steps; ++i)
    for (const Value *v : nodes[i]->operands)
      uses_[root_of(root_, v)].push_back(i);
  for (const GraphOutput &o : g.outputs)
    uses_[root_of(root_, o.value)].push_back(n_steps);

  // Fixed locations: inputs, constants, outputs written in place/directly.
  for (size_t i = 0; i < g.inputs().size(); ++i)
    loc_[g.inputs()[i].value] = {Space::input, static_cast<int>(i), 0};
  for (const auto &np : nodes)
    if (np->op == Op::Constant) {
      Array c(np->result()->type);
      host_fill(c.type(), np->attrs.get_float("value"), c.data());
      loc_[np->result()] = {Space::constant,
                            static_cast<int>(constants_.size()), 0};
      constants_.push_back(std::move(c));
    }
  outputs_.resize(g.outputs.size());
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const GraphOutput &o = g.outputs[i];
    if (o.alias < 0)
      outputs_[i] = Array(o.value->type);
    const Value *v = o.value;
    bool computed = v->def && !root_.count(v) && v->def->op != Op::Constant;
    if (!computed || loc_.count(v))
      continue;
    if (o.alias >= 0) {
      if (inplace_safe(v, o.alias)) {
        loc_[v] = {Space::input, o.alias, 0};
        ++stats.inplace_outputs;
      }
    } else {
      loc_[v] = {Space::output, static_cast<int>(i), 0};
    }
  }

  // Memory plan for the remaining intermediates.
  std::vector<ArenaRequest> reqs;
  std::vector<const Value *> planned;
  for (int i = 0; i < n_steps; ++i)
    for (const Value *r : nodes[i]->results) {
      if (root_.count(r) || loc_.count(r))
        continue;
      int last = i;
      for (int s : uses_[r])
        last = std::max(last, s);
      reqs.push_back({static_cast<int64_t>(r->type.bytes()), i, last, 0});
      planned.push_back(r);
    }
  auto arena_bytes = static_cast<size_t>(place_in_arena(reqs));
  for (size_t k = 0; k < planned.size(); ++k)
    loc_[planned[k]] = {Space::arena, 0, static_cast<size_t>(reqs[k].offset)};
  arena_ =
      Array(Type{DType::f64, {static_cast<int64_t>((arena_bytes + 7) / 8)}});
  stats.arena_bytes = arena_bytes;
  for (auto &[view, root] : root_)
    loc_[view] = loc_.at(root);

  // Launches, in node order.
  auto locs = [&](const std::vector<Value *> &vs, std::vector<Loc> &out) {
    for (const Value *v : vs)
      out.push_back(loc_.at(v));
  };
  for (int i = 0; i < n_steps; ++i) {
    const Node &n = *nodes[i];
    if (n.op == Op::Reshape || n.op == Op::Constant || folded_.count(&n))
      continue;
    std::vector<Loc> args;
    locs(n.operands, args);
    locs(n.results, args);
    size_t launches_before = launches_.size();
    if (n.op == Op::Fused) {
      add_kernel(n, std::move(args));
    } else if (is_llvm_kernel_op(n)) {
      wraps_.push_back(wrap_as_fused(n));
      add_kernel(*wraps_.back()->nodes()[0], std::move(args));
    } else if (n.op == Op::BroadcastTo) {
      wraps_.push_back(
          make_copy_kernel(n.operands[0]->type, n.result()->type.shape));
      add_kernel(*wraps_.back()->nodes()[0], std::move(args));
    } else if (n.op == Op::Matmul) {
      add_matmul(n);
    } else if (n.op == Op::Transpose) {
      Type in = n.operands[0]->type;
      auto perm = n.attrs.get_ints("perm");
      launches_.push_back({std::move(args), [in, perm, this](void *const *p) {
                             host_transpose(in, perm, p[0], p[1], pool_);
                           }});
      ++stats.host_launches;
    } else if (n.op == Op::OneHot) {
      Type in = n.operands[0]->type, out = n.result()->type;
      launches_.push_back({std::move(args), [in, out](void *const *p) {
                             host_one_hot(in, out, p[0], p[1]);
                           }});
      ++stats.host_launches;
    } else if (n.op == Op::RandomUniform) {
      DType sd = n.operands[0]->type.dtype, od = n.operands[1]->type.dtype;
      Type out = n.result()->type;
      launches_.push_back(
          {std::move(args), [sd, od, out, this](void *const *p) {
             host_random_uniform(out, host_read_int(sd, p[0]),
                                 host_read_int(od, p[1]), p[2], pool_);
           }});
      ++stats.host_launches;
    } else {
      fail("cpu backend: op {} is not supported", op_name(n.op));
    }
    if (launches_.size() > launches_before)
      launches_.back().info = describe_launch(n);
  }
  {
    profile::Scope jit("jit (LLVM ORC)", "jit");
    compiler_.compile();
  }
  for (int k = 0; k < compiler_.size(); ++k)
    fns_.push_back(compiler_.kernel(k));
  stats.kernels_compiled = compiler_.compiled_count();

  // Output copies: into output buffers first, then into inputs (through a
  // staging buffer when the source is itself an input).
  std::vector<Copy> to_inputs;
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const GraphOutput &o = g.outputs[i];
    Loc src = loc_.at(o.value);
    Loc dst = o.alias >= 0 ? Loc{Space::input, o.alias, 0}
                           : Loc{Space::output, static_cast<int>(i), 0};
    if (src == dst)
      continue;
    size_t bytes = o.value->type.bytes();
    if (o.alias < 0) {
      copies_.push_back({src, dst, bytes});
    } else if (src.space == Space::input) {
      Loc st{Space::staging, static_cast<int>(staging_.size()), 0};
      staging_.push_back(Array(o.value->type));
      copies_.push_back({src, st, bytes});
      to_inputs.push_back({st, dst, bytes});
    } else {
      to_inputs.push_back({src, dst, bytes});
    }
  }
  copies_.insert(copies_.end(), to_inputs.begin(), to_inputs.end());
  stats.copies = static_cast<int>(copies_.size());

  size_t max_args = 0;
  for (const Launch &l : launches_)
    max_args = std::max(max_args, l.args.size());
  scratch_.assign(max_args, nullptr);
  input_ptrs_.assign(g.inputs().size(), nullptr);
  // Drop analysis state that refers to the graph's values.
  uses_.clear();
  users.clear();
}

class CpuBackend : public Backend {
public:
  explicit CpuBackend(int threads) {
    if (threads > 0)
      pool_ = std::make_shared<ThreadPool>(threads);
    else // the global pool lives for the whole process
      pool_ = std::shared_ptr<ThreadPool>(&ThreadPool::global(),
                                          [](ThreadPool *) {});
  }
  std::string_view name() const override { return "cpu"; }
  std::unique_ptr<Executable> compile(const Graph &g) override {
    return std::make_unique<CpuExecutable>(g, pool_);
  }

private:
  std::shared_ptr<ThreadPool> pool_;
};

} // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  return std::make_unique<CpuBackend>(threads);
}

const CpuExecutableStats *cpu_executable_stats(const Executable &e) {
  auto *c = dynamic_cast<const CpuExecutable *>(&e);
  return c ? &c->stats : nullptr;
}

} // namespace kiln
