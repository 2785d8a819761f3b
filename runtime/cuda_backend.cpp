// The CUDA backend (see runtime/cuda_backend.h for the host/device
// coherence rules). One executable = the execution plan of the graph
// (plan/plan.h, lower), one NVRTC module holding a kernel per kernel launch,
// the plan's buffers on the device (arena, outputs, constants, staging), a
// pinned staging buffer for the data inputs and the outputs, and the plan's
// launches (kernel, cuBLAS GEMM, copy) enqueued on one stream; from the
// second run on they are captured once as a CUDA graph and replayed. A
// change of the device buffers bound to params/state (a new host Array)
// re-captures.
#include "runtime/cuda_backend.h"

#include "codegen/cuda_emitter.h"
#include "codegen/cuda_nvrtc.h"
#include "ir/error.h"
#include "plan/plan.h"
#include "runtime/cuda_cublas.h"
#include "runtime/cuda_driver.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <mutex>
#include <unordered_map>

namespace kiln {

namespace {

using cuda::check;
using cuda::Driver;

constexpr size_t kAlign = 256;
constexpr size_t kCublasWorkspace = size_t{32} << 20;

size_t align_up(size_t b) { return (b + kAlign - 1) / kAlign * kAlign; }

// A driver call in a destructor or shutdown, which must not throw: a
// failure is reported on stderr, never silently dropped.
void check_quiet(const Driver &d, CUresult r, const char *what) {
  try {
    check(d, r, what);
  } catch (const Error &e) {
    fmt::print(stderr, "kiln: warning: {}\n", e.what());
  }
}

struct Context;
// Every live Context, for cuda_shutdown (at exit).
struct Contexts {
  std::mutex mu;
  std::vector<std::weak_ptr<Context>> all;
};
Contexts &contexts() {
  static Contexts *c = new Contexts; // used at exit: never destroyed
  return *c;
}
void shutdown_all();
// atexit handlers run in reverse order of registration, so one registered
// after a CUDA library's own (cuInit's, cuBLAS's static CUDA runtime's at
// cublasCreate) runs before that library is torn down. Registered again
// after each such point; shutdown_all is idempotent.
void register_exit_shutdown() { std::atexit(shutdown_all); }

// The device, context, stream, cuBLAS and the residency registry, shared by
// the backend and its executables.
struct Context : DeviceState {
  const Driver &d;
  CudaOptions opt;
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  CUstream stream = nullptr;
  int sm_count = 1, arch = 90;
  std::string name;
  CUdeviceptr workspace = 0;
  std::unique_ptr<cuda::Cublas> cublas;
  // cuda_shutdown released everything: no CUDA call may follow.
  bool shut_down = false;

  struct Resident {
    Array host; // keeps the storage (and so the key) alive
    CUdeviceptr dev = 0;
    bool host_dirty = false;
    int users = 0; // executable inputs bound to it (see acquire/release)
  };
  std::unordered_map<const void *, Resident> resident;
  // A run may have updated device copies that their host Arrays do not
  // hold yet (so sync_to_host has work to do; it is cheap otherwise, which
  // lets every host read of a parameter call it).
  bool device_ahead = false;
  std::mutex mu;

  Context(const Driver &drv, const CudaOptions &o) : d(drv), opt(o) {
    check(d, d.cuDeviceGet(&dev, o.device), "cuDeviceGet");
    check(d, d.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain");
    try {
      use();
      // A failed query must not leave a default behind (an SM count of 1
      // would silently cap every grid at 16 blocks).
      int major = 0, minor = 0;
      check(d,
            d.cuDeviceGetAttribute(
                &sm_count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev),
            "cuDeviceGetAttribute (multiprocessor count)");
      if (sm_count < 1)
        fail("cuda: the device reports {} multiprocessors", sm_count);
      check(d,
            d.cuDeviceGetAttribute(
                &major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev),
            "cuDeviceGetAttribute (compute capability)");
      check(d,
            d.cuDeviceGetAttribute(
                &minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev),
            "cuDeviceGetAttribute (compute capability)");
      arch = major * 10 + minor;
      char buf[256] = {};
      check(d, d.cuDeviceGetName(buf, sizeof buf, dev), "cuDeviceGetName");
      name = buf;
      check(d, d.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING),
            "cuStreamCreate");
    } catch (...) {
      d.cuDevicePrimaryCtxRelease(dev);
      throw;
    }
  }
  ~Context() { shutdown(); }
  // Writes the device copies back and releases every CUDA resource, once.
  void shutdown() {
    if (shut_down)
      return;
    try {
      use();
      sync_to_host();
    } catch (const Error &e) {
      fmt::print(stderr, "kiln: warning: {}\n", e.what());
    }
    for (auto &[k, r] : resident)
      check_quiet(d, d.cuMemFree(r.dev), "cuMemFree");
    resident.clear();
    cublas.reset();
    if (workspace)
      check_quiet(d, d.cuMemFree(workspace), "cuMemFree");
    workspace = 0;
    if (stream)
      check_quiet(d, d.cuStreamDestroy(stream), "cuStreamDestroy");
    stream = nullptr;
    check_quiet(d, d.cuDevicePrimaryCtxRelease(dev),
                "cuDevicePrimaryCtxRelease");
    shut_down = true;
  }
  void use() const {
    if (shut_down)
      fail("cuda: the CUDA backend was shut down (cuda_shutdown or exit)");
    check(d, d.cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
  }

  cuda::Cublas &blas() {
    if (!cublas) {
      check(d, d.cuMemAlloc(&workspace, kCublasWorkspace), "cuMemAlloc");
      cublas = std::make_unique<cuda::Cublas>(stream, opt.allow_tf32,
                                              opt.deterministic, workspace,
                                              kCublasWorkspace);
      register_exit_shutdown(); // after cuBLAS's own exit handlers
    }
    return *cublas;
  }

  // The device copy of a param/state Array, copied in when new or dirty.
  CUdeviceptr bind(const Array &a) {
    std::lock_guard<std::mutex> lock(mu);
    auto [it, fresh] = resident.try_emplace(a.data());
    Resident &r = it->second;
    if (fresh || r.host.bytes() != a.bytes()) {
      if (r.dev)
        check(d, d.cuMemFree(r.dev), "cuMemFree");
      r.dev = 0;
      r.host = a;
      check(d, d.cuMemAlloc(&r.dev, std::max<size_t>(a.bytes(), 1)),
            "cuMemAlloc");
      r.host_dirty = true;
    }
    if (r.host_dirty) {
      check(d, d.cuMemcpyHtoD(r.dev, a.data(), a.bytes()), "cuMemcpyHtoD");
      r.host_dirty = false;
    }
    return r.dev;
  }
  void sync_to_host() override {
    std::lock_guard<std::mutex> lock(mu);
    if (!device_ahead || shut_down)
      return;
    use();
    check(d, d.cuStreamSynchronize(stream), "cuStreamSynchronize");
    for (auto &[k, r] : resident)
      if (!r.host_dirty && r.host.bytes())
        check(d, d.cuMemcpyDtoH(r.host.data(), r.dev, r.host.bytes()),
              "cuMemcpyDtoH");
    device_ahead = false;
  }
  // An executable input binds / stops binding the Array whose storage is
  // `key` (after bind). When the last one lets go (a param replaced by
  // another Array, the executable destroyed), the device copy is written
  // back to its host Array and freed, so replaced or dropped params do not
  // hold device memory; an Array bound again later is copied in afresh.
  void acquire(const void *key) {
    std::lock_guard<std::mutex> lock(mu);
    ++resident.at(key).users;
  }
  void release(const void *key) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = resident.find(key);
    if (shut_down || it == resident.end() || --it->second.users > 0)
      return;
    Resident &r = it->second;
    use();
    check(d, d.cuStreamSynchronize(stream), "cuStreamSynchronize");
    if (device_ahead && !r.host_dirty && r.host.bytes())
      check(d, d.cuMemcpyDtoH(r.host.data(), r.dev, r.host.bytes()),
            "cuMemcpyDtoH");
    check(d, d.cuMemFree(r.dev), "cuMemFree");
    resident.erase(it);
  }
  size_t resident_count() {
    std::lock_guard<std::mutex> lock(mu);
    return resident.size();
  }
  void mark_dirty(const Array &a) {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = resident.find(a.data()); it != resident.end())
      it->second.host_dirty = true;
  }
  void mark_host_modified(const Array &a) override { mark_dirty(a); }
  // Every host Array is the true value again (after a sync, when another
  // backend takes over the same parameters).
  void mark_all_dirty() {
    std::lock_guard<std::mutex> lock(mu);
    for (auto &[k, r] : resident)
      r.host_dirty = true;
  }
  void note_device_ahead() {
    std::lock_guard<std::mutex> lock(mu);
    device_ahead = true;
  }
};

// Runs an execution plan (plan/plan.h): every launch of lower(graph), in
// order, with its buffers resolved to device addresses. Nothing is planned
// here: GEMMs take the plan's transpose flags and offsets, kernels are the
// plan's kernel nodes rendered by the CUDA emitter, copies are copies.
class CudaExecutable : public Executable {
public:
  CudaExecutable(std::shared_ptr<Context> ctx, const Graph &g)
      : c_(std::move(ctx)), d_(c_->d), g_(g.clone()) {
    check_gemm_sizes();
    add_label_ranges(*g_);
    plan_ = lower(*g_);
    for (const GraphOutput &o : g_->outputs)
      updates_in_place_ = updates_in_place_ || o.alias >= 0;
    c_->use();
    build_kernels();
    layout();
  }

  ~CudaExecutable() override {
    // After cuda_shutdown (at exit) the context and everything in it is
    // gone: no CUDA call may follow.
    if (c_->shut_down)
      return;
    try {
      c_->use();
    } catch (const Error &e) {
      fmt::print(stderr, "kiln: warning: {}\n", e.what());
      return;
    }
    check_quiet(d_, d_.cuStreamSynchronize(c_->stream), "cuStreamSynchronize");
    drop_graph();
    for (size_t i = 0; i < in_bound_.size(); ++i)
      if (in_bound_[i]) {
        try {
          c_->release(in_key_[i]);
        } catch (const Error &e) {
          fmt::print(stderr, "kiln: warning: {}\n", e.what());
        }
      }
    for (CUdeviceptr p : owned_)
      check_quiet(d_, d_.cuMemFree(p), "cuMemFree");
    if (pinned_)
      check_quiet(d_, d_.cuMemFreeHost(pinned_), "cuMemFreeHost");
    if (module_)
      check_quiet(d_, d_.cuModuleUnload(module_), "cuModuleUnload");
  }

  const ExecutionPlan &plan() const { return plan_; }

  std::vector<Array> run(std::span<Array> inputs) override {
    check_inputs(*g_, inputs);
    c_->use();
    // Bind params/state; stage data inputs.
    bool changed = false;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const GraphInput &gi = g_->inputs()[i];
      if (gi.kind == InputKind::data) {
        if (inputs[i].bytes())
          std::memcpy(pinned_ + in_off_[i], inputs[i].data(),
                      inputs[i].bytes());
        continue;
      }
      CUdeviceptr p = c_->bind(inputs[i]);
      const void *key = inputs[i].data();
      if (!in_bound_[i] || in_key_[i] != key) {
        c_->acquire(key);
        if (in_bound_[i])
          c_->release(in_key_[i]);
        in_key_[i] = key;
        in_bound_[i] = true;
      }
      changed = changed || p != in_addr_[i];
      in_addr_[i] = p;
    }
    if (changed)
      drop_graph();
    if (changed || !tables_uploaded_)
      upload_tables();
    // From here on the device copies may be newer than the host Arrays
    // (set before the work, so that a failed run still counts).
    if (updates_in_place_)
      c_->note_device_ahead();
    CUstream s = c_->stream;
    if (stage_in_bytes_)
      check(d_, d_.cuMemcpyHtoDAsync(stage_dev_, pinned_, stage_in_bytes_, s),
            "cuMemcpyHtoDAsync");
    if (!c_->opt.use_graphs || runs_ == 0) {
      enqueue();
    } else {
      if (!graph_exec_)
        capture();
      check(d_, d_.cuGraphLaunch(graph_exec_, s), "cuGraphLaunch");
    }
    ++runs_;
    // Outputs: device -> pinned staging, then into fresh Arrays.
    std::vector<Array> out(g_->outputs.size());
    for (size_t k = 0; k < g_->outputs.size(); ++k) {
      const GraphOutput &o = g_->outputs[k];
      size_t bytes = o.value->type.bytes();
      if (o.alias < 0 && bytes)
        check(
            d_,
            d_.cuMemcpyDtoHAsync(pinned_ + out_off_[k], out_dev_[k], bytes, s),
            "cuMemcpyDtoHAsync");
    }
    check(d_, d_.cuStreamSynchronize(s), "cuStreamSynchronize (the step)");
    for (size_t k = 0; k < g_->outputs.size(); ++k) {
      const GraphOutput &o = g_->outputs[k];
      if (o.alias >= 0) {
        Array &target = inputs[o.alias];
        if (c_->opt.write_back_every_step)
          check(
              d_,
              d_.cuMemcpyDtoH(target.data(), in_addr_[o.alias], target.bytes()),
              "cuMemcpyDtoH");
        out[k] = target;
        continue;
      }
      Array a(o.value->type);
      if (a.bytes())
        std::memcpy(a.data(), pinned_ + out_off_[k], a.bytes());
      out[k] = std::move(a);
    }
    return out;
  }

private:
  // cuBLAS takes m, n, k, the leading dimensions and the batch count as
  // int: a larger one would be truncated into a wrong (or negative) size,
  // so it is an error before anything is lowered, allocated or launched.
  void check_gemm_sizes() const {
    constexpr int64_t kMax = std::numeric_limits<int>::max();
    for (const auto &n : g_->nodes()) {
      if (n->op != Op::Matmul)
        continue;
      const Type &at = n->operands[0]->type, &bt = n->operands[1]->type,
                 &rt = n->result()->type;
      Shape batch(rt.shape.begin(), rt.shape.end() - 2);
      std::pair<const char *, int64_t> dims[] = {
          {"m", at.shape[at.rank() - 2]},
          {"k", at.shape.back()},
          {"n", bt.shape.back()},
          {"the batch count", numel(batch)}};
      for (auto [what, v] : dims)
        if (v > kMax)
          fail_at_node(*n, fmt::format("cuda: matmul {} x {}: {} = {} exceeds "
                                       "cuBLAS's int range ({}); split the "
                                       "matmul",
                                       at.str(), bt.str(), what, v, kMax));
    }
  }

  // The device address of a plan buffer for this run.
  CUdeviceptr addr(const BufferRef &b) const {
    const std::vector<CUdeviceptr> &base = b.space == Space::input    ? in_addr_
                                           : b.space == Space::output ? out_dev_
                                           : b.space == Space::constant
                                               ? const_dev_
                                               : staging_dev_;
    return (b.space == Space::arena ? arena_ : base[b.index]) +
           static_cast<CUdeviceptr>(b.offset);
  }

  // One NVRTC module with a kernel per kernel launch, named after the
  // launch's index and source op (kiln_k<launch>_<what>).
  void build_kernels() {
    std::string src(cuda::cuda_prelude());
    kernel_of_.assign(plan_.launches.size(), -1);
    for (size_t i = 0; i < plan_.launches.size(); ++i) {
      const Launch &l = plan_.launches[i];
      if (l.kind != LaunchKind::kernel)
        continue;
      kernels_.push_back(cuda::emit_cuda_kernel(
          *l.kernel, cuda::cuda_kernel_name(i, *l.source)));
      kernel_of_[i] = static_cast<int>(kernels_.size()) - 1;
      src += "\n" + kernels_.back().kernel;
    }
    if (kernels_.empty())
      return;
    cuda::NvrtcOptions o;
    o.arch = c_->arch;
    o.fast_math = c_->opt.fast_math;
    cuda::NvrtcResult r = cuda::nvrtc_compile(src, g_->name, o);
    check(d_, d_.cuModuleLoadData(&module_, r.binary.data()),
          "cuModuleLoadData");
    for (const cuda::CudaKernel &k : kernels_) {
      CUfunction f = nullptr, fin = nullptr;
      check(d_, d_.cuModuleGetFunction(&f, module_, k.name.c_str()),
            fmt::format("cuModuleGetFunction ({})", k.name).c_str());
      if (!k.finish_name.empty())
        check(d_, d_.cuModuleGetFunction(&fin, module_, k.finish_name.c_str()),
              fmt::format("cuModuleGetFunction ({})", k.finish_name).c_str());
      funcs_.push_back(f);
      finish_funcs_.push_back(fin);
    }
  }

  CUdeviceptr alloc(size_t bytes) {
    CUdeviceptr p = 0;
    check(d_, d_.cuMemAlloc(&p, std::max<size_t>(bytes, 1)), "cuMemAlloc");
    owned_.push_back(p);
    return p;
  }

  // The plan's buffers on the device (inputs are bound per run).
  void layout() {
    const MemoryPlan &mem = plan_.memory;
    arena_ = alloc(static_cast<size_t>(mem.arena_bytes));
    // Constants: filled on the host, copied in once.
    for (const Value *v : mem.constants) {
      Array a(v->type);
      double value = v->def->attrs.get_float("value");
      for (int64_t i = 0; i < a.numel(); ++i)
        a.set(i, value);
      const_dev_.push_back(alloc(a.bytes()));
      if (a.bytes())
        check(d_, d_.cuMemcpyHtoD(const_dev_.back(), a.data(), a.bytes()),
              "cuMemcpyHtoD (constant)");
    }
    for (const Type &t : plan_.staging)
      staging_dev_.push_back(alloc(t.bytes()));
    out_dev_.assign(g_->outputs.size(), 0);
    for (size_t k = 0; k < g_->outputs.size(); ++k)
      if (g_->outputs[k].alias < 0)
        out_dev_[k] = alloc(g_->outputs[k].value->type.bytes());
    // Split reductions' partials: kernels run one after another on the
    // stream, so one buffer serves them all.
    int64_t scratch = 0;
    for (const cuda::CudaKernel &k : kernels_)
      scratch = std::max(scratch, k.scratch_bytes);
    if (scratch)
      scratch_ = alloc(static_cast<size_t>(scratch));
    // Data inputs, then outputs, in one pinned buffer; data inputs also in
    // one device block so that staging is a single copy.
    size_t off = 0;
    in_addr_.assign(g_->inputs().size(), 0);
    in_key_.assign(g_->inputs().size(), nullptr);
    in_bound_.assign(g_->inputs().size(), false);
    in_off_.assign(g_->inputs().size(), 0);
    for (size_t i = 0; i < g_->inputs().size(); ++i)
      if (g_->inputs()[i].kind == InputKind::data) {
        in_off_[i] = off;
        off += align_up(g_->inputs()[i].value->type.bytes());
      }
    stage_in_bytes_ = off;
    if (stage_in_bytes_) {
      stage_dev_ = alloc(stage_in_bytes_);
      for (size_t i = 0; i < g_->inputs().size(); ++i)
        if (g_->inputs()[i].kind == InputKind::data)
          in_addr_[i] = stage_dev_ + in_off_[i];
    }
    out_off_.assign(g_->outputs.size(), 0);
    for (size_t k = 0; k < g_->outputs.size(); ++k) {
      out_off_[k] = off;
      off += align_up(g_->outputs[k].value->type.bytes());
    }
    void *p = nullptr;
    check(d_, d_.cuMemAllocHost(&p, std::max<size_t>(off, 1)),
          "cuMemAllocHost");
    pinned_ = static_cast<char *>(p);
    // Multi-tensor tables: entries are static, pointers follow bindings.
    mt_.resize(kernels_.size());
    for (size_t k = 0; k < kernels_.size(); ++k)
      if (kernels_[k].multi_tensor) {
        const auto &e = kernels_[k].mt_entries;
        mt_[k].table = alloc(e.size() * sizeof(cuda::MtEntry));
        check(d_,
              d_.cuMemcpyHtoD(mt_[k].table, e.data(),
                              e.size() * sizeof(cuda::MtEntry)),
              "cuMemcpyHtoD");
        mt_[k].ptrs = alloc(kernels_[k].mt_slots.size() * sizeof(CUdeviceptr));
      }
  }

  // The multi-tensor kernels' pointer tables: slot k >= 0 is operand k of
  // the kernel node (args[k]), k < 0 result -k-1 (after the operands).
  void upload_tables() {
    for (size_t i = 0; i < plan_.launches.size(); ++i) {
      int ki = kernel_of_[i];
      if (ki < 0 || !kernels_[ki].multi_tensor)
        continue;
      const Launch &l = plan_.launches[i];
      int64_t nops = static_cast<int64_t>(l.kernel->operands.size());
      std::vector<CUdeviceptr> ptrs;
      for (int slot : kernels_[ki].mt_slots)
        ptrs.push_back(addr(l.args[slot >= 0 ? slot : nops - slot - 1]));
      check(d_,
            d_.cuMemcpyHtoD(mt_[ki].ptrs, ptrs.data(),
                            ptrs.size() * sizeof(CUdeviceptr)),
            "cuMemcpyHtoD");
    }
    tables_uploaded_ = true;
  }

  void sync_after(const std::string &what) {
    if (c_->opt.sync_launches)
      check(d_, d_.cuStreamSynchronize(c_->stream),
            fmt::format("{} (KILN_CUDA_SYNC=1)", what).c_str());
  }

  void launch_kernel(const Launch &l, int ki) {
    const cuda::CudaKernel &k = kernels_[ki];
    std::vector<CUdeviceptr> args;
    if (k.multi_tensor) {
      args = {mt_[ki].table, mt_[ki].ptrs};
    } else {
      for (const BufferRef &b : l.args)
        args.push_back(addr(b));
    }
    if (k.scratch_bytes)
      args.push_back(scratch_);
    std::vector<void *> params;
    for (CUdeviceptr &a : args)
      params.push_back(&a);
    auto go = [&](CUfunction f, const cuda::CudaLaunch &cl,
                  const std::string &name) {
      int64_t grid = cl.exact_grid;
      if (grid <= 0)
        grid = std::clamp<int64_t>((cl.units + cl.units_per_block - 1) /
                                       cl.units_per_block,
                                   1, int64_t{c_->sm_count} * 16);
      check(d_,
            d_.cuLaunchKernel(f, static_cast<unsigned>(grid), 1, 1,
                              static_cast<unsigned>(cl.block_x),
                              static_cast<unsigned>(cl.block_y), 1, 0,
                              c_->stream, params.data(), nullptr),
            fmt::format("launch of kernel {}", name).c_str());
      sync_after(fmt::format("kernel {}", name));
    };
    go(funcs_[ki], k.launch, k.name);
    if (CUfunction fin = finish_funcs_[ki])
      go(fin, k.finish_launch, k.finish_name);
  }

  // C = op(A) op(B) through cuBLAS: one strided-batched call when every
  // operand's batch offsets are evenly spaced, else one call per batch.
  void gemm(const Launch &l) {
    const GemmDesc &g = l.gemm;
    const Type &rt = l.source->result()->type;
    CUdeviceptr A = addr(l.args[0]), B = addr(l.args[1]), C = addr(l.args[2]);
    // A zero-size result needs nothing; k == 0 is a sum of nothing, zeros
    // (cuBLAS would reject lda = k = 0).
    if (rt.bytes() == 0)
      return;
    if (g.k == 0) {
      check(d_, d_.cuMemsetD8Async(C, 0, rt.bytes(), c_->stream),
            "cuMemsetD8Async (matmul with k = 0)");
      return;
    }
    auto es = static_cast<CUdeviceptr>(g.f64 ? 8 : 4);
    auto at = [&](CUdeviceptr p, int64_t off) {
      return p + static_cast<CUdeviceptr>(off) * es;
    };
    cuda::Cublas &blas = c_->blas();
    if (g.stride_a >= 0 && g.stride_b >= 0 && g.stride_c >= 0) {
      blas.gemm(g.f64, g.trans_a, g.trans_b, g.m, g.n, g.k, at(A, g.a_off[0]),
                g.lda, g.stride_a, at(B, g.b_off[0]), g.ldb, g.stride_b,
                at(C, g.c_off[0]), g.stride_c, g.batch());
    } else {
      for (int64_t p = 0; p < g.batch(); ++p)
        blas.gemm(g.f64, g.trans_a, g.trans_b, g.m, g.n, g.k, at(A, g.a_off[p]),
                  g.lda, 0, at(B, g.b_off[p]), g.ldb, 0, at(C, g.c_off[p]), 0,
                  1);
    }
    sync_after(fmt::format("matmul {}", l.name));
  }

  // The plan's launch list on the stream.
  void enqueue() {
    for (size_t i = 0; i < plan_.launches.size(); ++i) {
      const Launch &l = plan_.launches[i];
      switch (l.kind) {
      case LaunchKind::kernel:
        launch_kernel(l, kernel_of_[i]);
        break;
      case LaunchKind::gemm:
        gemm(l);
        break;
      case LaunchKind::copy:
        if (l.copy_bytes)
          check(d_,
                d_.cuMemcpyDtoDAsync(addr(l.args[1]), addr(l.args[0]),
                                     static_cast<size_t>(l.copy_bytes),
                                     c_->stream),
                fmt::format("cuMemcpyDtoDAsync ({})", l.name).c_str());
        break;
      }
    }
  }

  void capture() {
    c_->blas(); // create cuBLAS (and its workspace) before capturing
    CUstream s = c_->stream;
    check(d_, d_.cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
          "cuStreamBeginCapture");
    try {
      enqueue();
    } catch (...) {
      // The capture is abandoned; the error being thrown is the news.
      CUgraph g = nullptr;
      if (d_.cuStreamEndCapture(s, &g) == CUDA_SUCCESS && g)
        check_quiet(d_, d_.cuGraphDestroy(g), "cuGraphDestroy");
      throw;
    }
    check(d_, d_.cuStreamEndCapture(s, &graph_), "cuStreamEndCapture");
    check(d_, d_.cuGraphInstantiateWithFlags(&graph_exec_, graph_, 0),
          "cuGraphInstantiate");
  }

  void drop_graph() {
    if (graph_exec_)
      check_quiet(d_, d_.cuGraphExecDestroy(graph_exec_), "cuGraphExecDestroy");
    if (graph_)
      check_quiet(d_, d_.cuGraphDestroy(graph_), "cuGraphDestroy");
    graph_exec_ = nullptr;
    graph_ = nullptr;
  }

  std::shared_ptr<Context> c_;
  const Driver &d_;
  std::unique_ptr<Graph> g_;
  ExecutionPlan plan_;
  std::vector<cuda::CudaKernel> kernels_;
  std::vector<int> kernel_of_; // per launch: its kernel, or -1
  std::vector<CUfunction> funcs_;
  std::vector<CUfunction> finish_funcs_; // split reductions' second kernels
  CUmodule module_ = nullptr;
  struct MtTables {
    CUdeviceptr table = 0, ptrs = 0;
  };
  std::vector<MtTables> mt_;
  bool tables_uploaded_ = false;
  std::vector<CUdeviceptr> owned_;
  CUdeviceptr arena_ = 0, stage_dev_ = 0, scratch_ = 0;
  std::vector<CUdeviceptr> out_dev_, const_dev_, staging_dev_;
  std::vector<CUdeviceptr> in_addr_;
  // The host storage each param/state input is bound to (Context::acquire).
  std::vector<const void *> in_key_;
  std::vector<bool> in_bound_;
  std::vector<size_t> in_off_, out_off_;
  size_t stage_in_bytes_ = 0;
  char *pinned_ = nullptr;
  CUgraph graph_ = nullptr;
  CUgraphExec graph_exec_ = nullptr;
  int64_t runs_ = 0;
  bool updates_in_place_ = false;
};

class CudaBackend : public Backend {
public:
  explicit CudaBackend(std::shared_ptr<Context> c) : c_(std::move(c)) {}
  std::string_view name() const override { return "cuda"; }
  std::unique_ptr<Executable> compile(const Graph &g) override {
    return std::make_unique<CudaExecutable>(c_, g);
  }
  Context &context() { return *c_; }
  void sync_to_host() override { c_->sync_to_host(); }
  void mark_host_modified(const Array &a) override { c_->mark_dirty(a); }
  void mark_all_host_modified() override { c_->mark_all_dirty(); }

private:
  std::shared_ptr<Context> c_;
};

void shutdown_all() {
  std::vector<std::shared_ptr<Context>> live;
  {
    Contexts &cs = contexts();
    std::lock_guard<std::mutex> lock(cs.mu);
    for (const auto &w : cs.all)
      if (auto c = w.lock())
        live.push_back(std::move(c));
    cs.all.clear();
  }
  for (const auto &c : live)
    c->shutdown();
}

CudaBackend &as_cuda(Backend &b) {
  auto *c = dynamic_cast<CudaBackend *>(&b);
  if (!c)
    fail("cuda: backend '{}' is not the CUDA backend", b.name());
  return *c;
}

} // namespace

std::unique_ptr<Backend> make_cuda_backend_if_available(std::string *reason,
                                                        const CudaOptions &o) {
  std::string why;
  const Driver *d = Driver::get(&why);
  if (!d) {
    if (reason)
      *reason = why;
    return nullptr;
  }
  if (!cuda::nvrtc_available(&why)) {
    if (reason)
      *reason = why;
    return nullptr;
  }
  CudaOptions opt = o;
  auto env_is = [](const char *var, char c) {
    const char *v = std::getenv(var);
    return v && v[0] == c && v[1] == 0;
  };
  if (env_is("KILN_CUDA_GRAPHS", '0'))
    opt.use_graphs = false;
  if (env_is("KILN_CUDA_DETERMINISTIC", '1'))
    opt.deterministic = true;
  if (env_is("KILN_CUDA_SYNC", '1'))
    opt.sync_launches = true;
  // A synchronisation is not allowed while a stream is captured.
  if (opt.sync_launches)
    opt.use_graphs = false;
  try {
    auto ctx = std::make_shared<Context>(*d, opt);
    register_device_state(ctx);
    {
      Contexts &cs = contexts();
      std::lock_guard<std::mutex> lock(cs.mu);
      cs.all.push_back(ctx);
    }
    register_exit_shutdown(); // after cuInit's exit handlers
    return std::make_unique<CudaBackend>(std::move(ctx));
  } catch (const Error &e) {
    if (reason)
      *reason = e.what();
    return nullptr;
  }
}

void cuda_sync_to_host(Backend &backend) {
  as_cuda(backend).context().sync_to_host();
}

void cuda_mark_host_modified(Backend &backend, const Array &a) {
  as_cuda(backend).context().mark_dirty(a);
}

void cuda_shutdown() { shutdown_all(); }

int cuda_cublas_math_mode(Backend &backend) {
  Context &c = as_cuda(backend).context();
  c.use();
  return c.blas().math_mode();
}

size_t cuda_resident_count(Backend &backend) {
  return as_cuda(backend).context().resident_count();
}

const ExecutionPlan *cuda_executable_plan(const Executable &e) {
  auto *c = dynamic_cast<const CudaExecutable *>(&e);
  return c ? &c->plan() : nullptr;
}

} // namespace kiln
