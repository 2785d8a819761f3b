// The CPU backend's compile step: graph -> launches, locations and memory
// plan (see cpu_backend.h for the layout), and the replay loop.
#include "runtime/cpu_backend.h"

#include "codegen/llvm_kernel.h"
#include "ir/error.h"
#include "ir/profile.h"
#include "plan/plan.h"
#include "runtime/cpu_gather_ops.h"
#include "runtime/cpu_host_ops.h"
#include "runtime/cpu_thread_pool.h"
#include "runtime/cpu_window_ops.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <functional>

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

// A launch of the plan, made callable: the arguments' buffers are resolved
// per run (inputs are bound by run()).
struct CpuLaunch {
  const Launch *plan;
  std::function<void(void *const *)> fn;
};

class CpuExecutable : public Executable {
public:
  CpuExecutable(const Graph &g, std::shared_ptr<ThreadPool> pool)
      // The ranges of one_hot labels and gather indices that are data
      // inputs: a bad one is an error before the step runs (check_inputs).
      : g_(g.clone()), plan_((add_label_ranges(*g_), lower(*g_))),
        keep_pool_(std::move(pool)), pool_(*keep_pool_) {
    build();
  }

  std::vector<Array> run(std::span<Array> inputs) override {
    check_inputs(*g_, inputs);
    for (size_t i = 0; i < inputs.size(); ++i)
      input_ptrs_[i] = static_cast<std::byte *>(inputs[i].data());
    bool profiling = profile::enabled();
    for (const CpuLaunch &l : launches_) {
      const std::vector<BufferRef> &args = l.plan->args;
      for (size_t k = 0; k < args.size(); ++k)
        scratch_[k] = resolve(args[k]);
      double t0 = profiling ? profile::now_us() : 0;
      l.fn(scratch_.data());
      ++stats.launches_run;
      if (profiling && l.plan->kind != LaunchKind::copy)
        profile::record({l.plan->name, "launch", t0, profile::now_us() - t0,
                         kind_name(*l.plan), l.plan->bytes, l.plan->flops});
    }
    std::vector<Array> out;
    out.reserve(g_->outputs.size());
    for (size_t i = 0; i < g_->outputs.size(); ++i) {
      int alias = g_->outputs[i].alias;
      // A result belongs to the caller (as on the interpreter and CUDA):
      // handing out outputs_ itself would let the next run overwrite an
      // Array the caller kept (`Array a = t.to_host();` in a training loop).
      out.push_back(alias >= 0 ? inputs[alias] : outputs_[i].clone());
    }
    return out;
  }

  const ExecutionPlan &plan() const { return plan_; }
  CpuExecutableStats stats;

private:
  static std::string kind_name(const Launch &l) {
    if (l.kind == LaunchKind::gemm)
      return "gemm";
    if (l.fused)
      return std::string(fused_kind_name(*l.fused));
    return std::string(op_name(l.source->op));
  }

  void *resolve(const BufferRef &b) {
    std::byte *base = nullptr;
    switch (b.space) {
    case Space::input:
      base = input_ptrs_[b.index];
      break;
    case Space::arena:
      base = static_cast<std::byte *>(arena_.data());
      break;
    case Space::output:
      base = static_cast<std::byte *>(outputs_[b.index].data());
      break;
    case Space::constant:
      base = static_cast<std::byte *>(constants_[b.index].data());
      break;
    case Space::staging:
      base = static_cast<std::byte *>(staging_[b.index].data());
      break;
    }
    return base + b.offset;
  }

  void build();
  std::function<void(void *const *)> kernel_fn(const Launch &l);
  std::function<void(void *const *)> gemm_fn(const Launch &l);

  std::unique_ptr<Graph> g_;
  ExecutionPlan plan_;
  std::shared_ptr<ThreadPool> keep_pool_;
  ThreadPool &pool_;
  std::vector<CpuLaunch> launches_;
  Array arena_;
  std::vector<Array> outputs_, constants_, staging_;
  std::vector<std::byte *> input_ptrs_;
  std::vector<void *> scratch_;
  LlvmCompiler compiler_;
  std::vector<KernelFn> fns_;
};

// A JIT kernel (fused, or a wrapped standalone op) split over the pool, or
// a standalone op the CPU runs with a host loop.
std::function<void(void *const *)> CpuExecutable::kernel_fn(const Launch &l) {
  const Node &n = *l.kernel;
  if (l.fused) {
    int idx = compiler_.add(n, l.loop); // the plan's loop plan, not a new one
    const auto &info = compiler_.info(idx);
    int64_t work = info.work;
    int64_t grain = std::max<int64_t>(
        1, static_cast<int64_t>(32768.0 / std::max(1.0, info.bytes_per_item)));
    ++stats.kernel_launches;
    return [this, idx, work, grain](void *const *p) {
      KernelFn fn = fns_[idx];
      pool_.parallel_for(work, grain,
                         [fn, p](int64_t b, int64_t e) { fn(p, b, e); });
    };
  }
  ++stats.host_launches;
  if (n.op == Op::Transpose) {
    Type in = n.operands[0]->type;
    auto perm = n.attrs.get_ints("perm");
    return [in, perm, this](void *const *p) {
      host_transpose(in, perm, p[0], p[1], pool_);
    };
  }
  if (n.op == Op::Concat) {
    std::vector<Type> ins;
    for (const Value *v : n.operands)
      ins.push_back(v->type);
    int axis = normalize_axis(attr_int(n, "axis"), ins[0].rank());
    return [ins, axis](void *const *p) {
      std::vector<const void *> srcs(p, p + ins.size());
      host_concat(ins, axis, srcs, p[ins.size()]);
    };
  }
  if (n.op == Op::Slice) {
    Type in = n.operands[0]->type;
    SliceBounds sb = slice_bounds(in.shape, n.attrs);
    return [in, sb, this](void *const *p) {
      host_slice(in, sb, p[0], p[1], pool_);
    };
  }
  if (n.op == Op::Pad) {
    Type in = n.operands[0]->type;
    PadBounds pb = pad_bounds(in.shape, n.attrs);
    return
        [in, pb, this](void *const *p) { host_pad(in, pb, p[0], p[1], pool_); };
  }
  if (n.op == Op::Im2col || n.op == Op::Col2im || n.op == Op::MaxPool2d ||
      n.op == Op::MaxPool2dGrad) {
    // runtime/cpu_window_ops.h; args: operands, then the result.
    Op op = n.op;
    DType d = n.result()->type.dtype;
    Window2d w = window_of(n);
    return [op, d, w, this](void *const *p) {
      if (op == Op::Im2col)
        host_im2col(d, w, p[0], p[1], pool_);
      else if (op == Op::Col2im)
        host_col2im(d, w, p[0], p[1], pool_);
      else if (op == Op::MaxPool2d)
        host_max_pool2d(d, w, p[0], p[1], pool_);
      else
        host_max_pool2d_grad(d, w, p[0], p[1], p[2], pool_);
    };
  }
  if (n.op == Op::OneHot) {
    Type in = n.operands[0]->type, out = n.result()->type;
    return [in, out](void *const *p) { host_one_hot(in, out, p[0], p[1]); };
  }
  if (n.op == Op::Gather || n.op == Op::ScatterAdd) {
    // runtime/cpu_gather_ops.h; args: operands, then the result.
    bool gather = n.op == Op::Gather;
    GatherGeometry g = gather_geometry(n);
    DType d = n.result()->type.dtype;
    Shape is = n.operands[gather ? 1 : 0]->type.shape;
    return [gather, g, d, is, this](void *const *p) {
      if (gather)
        host_gather(g, d, is, p[0], p[1], p[2], pool_);
      else
        host_scatter_add(g, d, is, p[0], p[1], p[2], pool_);
    };
  }
  if (n.op == Op::RandomUniform) {
    DType sd = n.operands[0]->type.dtype, od = n.operands[1]->type.dtype;
    Type out = n.result()->type;
    return [sd, od, out, this](void *const *p) {
      host_random_uniform(out, host_read_int(sd, p[0]), host_read_int(od, p[1]),
                          p[2], pool_);
    };
  }
  fail_at_node(
      n, fmt::format("cpu backend: op {} is not supported", op_name(n.op)));
}

std::function<void(void *const *)> CpuExecutable::gemm_fn(const Launch &l) {
  const GemmDesc &g = l.gemm;
  size_t cbytes = l.source->result()->type.bytes();
  ++stats.gemm_launches;
  return [g, cbytes, this](void *const *p) {
    if (g.m == 0 || g.n == 0)
      return;
    if (g.k == 0) {
      std::memset(p[2], 0, cbytes);
      return;
    }
    run_gemm(g, p[0], p[1], p[2], pool_);
  };
}

void CpuExecutable::build() {
  const Graph &g = *g_;
  const MemoryPlan &mem = plan_.memory;
  for (const Value *c : mem.constants) {
    Array a(c->type);
    host_fill(a.type(), c->def->attrs.get_float("value"), a.data());
    constants_.push_back(std::move(a));
  }
  outputs_.resize(g.outputs.size());
  for (size_t i = 0; i < g.outputs.size(); ++i)
    if (g.outputs[i].alias < 0)
      outputs_[i] = Array(g.outputs[i].value->type);
  for (const Type &t : plan_.staging)
    staging_.push_back(Array(t));
  arena_ = Array(
      Type{DType::f64, {static_cast<int64_t>((mem.arena_bytes + 7) / 8)}});
  stats.arena_bytes = static_cast<size_t>(mem.arena_bytes);
  stats.folded_transposes = static_cast<int>(mem.folded.size());
  stats.inplace_outputs = static_cast<int>(mem.in_place.size());

  for (const Launch &l : plan_.launches) {
    CpuLaunch c{&l, nullptr};
    switch (l.kind) {
    case LaunchKind::gemm:
      c.fn = gemm_fn(l);
      break;
    case LaunchKind::kernel:
      c.fn = kernel_fn(l);
      break;
    case LaunchKind::copy: {
      size_t bytes = static_cast<size_t>(l.copy_bytes);
      c.fn = [bytes](void *const *p) {
        if (bytes)
          std::memmove(p[1], p[0], bytes);
      };
      ++stats.copies;
      break;
    }
    }
    launches_.push_back(std::move(c));
  }
  {
    profile::Scope jit("jit (LLVM ORC)", "jit");
    compiler_.compile();
  }
  for (int k = 0; k < compiler_.size(); ++k)
    fns_.push_back(compiler_.kernel(k));
  stats.kernels_compiled = compiler_.compiled_count();

  size_t max_args = 0;
  for (const Launch &l : plan_.launches)
    max_args = std::max(max_args, l.args.size());
  scratch_.assign(max_args, nullptr);
  input_ptrs_.assign(g.inputs().size(), nullptr);
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

const ExecutionPlan *cpu_executable_plan(const Executable &e) {
  auto *c = dynamic_cast<const CpuExecutable *>(&e);
  return c ? &c->plan() : nullptr;
}

} // namespace kiln
