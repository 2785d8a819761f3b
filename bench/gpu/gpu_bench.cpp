// kiln_gpu_bench (tools/gpu-check.sh, step "bench"): GPU timings, one row
// per measurement to stdout and, tab-separated (what, size, median ms,
// p90 ms, GB/s), to --tsv FILE for the check's table:
//   nvrtc_cold         compile_train_step + first step of the MLP at batch
//                      64 with an empty kernel cache (the check points
//                      KILN_CACHE_DIR at an empty folder): NVRTC compiles
//   warm_cache_start   the same in a new process (this program re-run with
//                      --warm-start) that finds the kernels in that cache
//   kiln_step          the MLP 784-256-128-10 training step `kiln train`
//                      runs (cross-entropy, SGD momentum 0.9, weight decay
//                      5e-4) at batch 64/256/1024: each step copies the
//                      host batch to the device and returns the loss to the
//                      host, so each step is synchronous and is timed with
//                      the host clock, one sample per step
//   fused_update       the fused SGD-momentum update (one multi-tensor
//                      kernel, params and momentum resident on the device)
//                      over 16M/64M/256M parameters; 20 bytes moved per
//                      parameter (read w, v, g; write w, v); 20 samples,
//                      each the host-clock time of 10 runs and one
//                      cuCtxSynchronize over 10 (kiln's stream is internal
//                      to the backend, so no events on it)
//   d2d_copy           cuMemcpyDtoDAsync of one parameter-sized buffer,
//                      CUDA events around each copy; 8 bytes moved per
//                      element (read + write)
// Exit 1 with a message when no CUDA device is usable.
#include "bench/mlp_step_case.h"
#include "frontend/compile.h"
#include "frontend/loss.h"
#include "frontend/models.h"
#include "frontend/optim.h"
#include "frontend/random.h"
#include "frontend/trace.h"
#include "runtime/cuda_backend.h"
#include "runtime/cuda_driver.h"
#include "tests/codegen/cuda_test_graphs.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace kiln {
namespace {

using Clock = std::chrono::steady_clock;
std::string tsv_path;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct Stats {
  double median, p90;
};

Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 9 / 10)]};
}

void emit(const std::string &what, const std::string &size, double median,
          double p90, double gbs) {
  std::string line =
      fmt::format("{}\t{}\t{:.4f}\t{:.4f}\t{}", what, size, median, p90,
                  gbs > 0 ? fmt::format("{:.0f}", gbs) : "-");
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  if (!tsv_path.empty())
    std::ofstream(tsv_path, std::ios::app) << line << "\n";
}

StepCase make_case(int64_t batch) { return make_step_case(batch, 7); }

// compile_train_step + first step at batch 64, in ms.
double compile_and_first_step() {
  StepCase c = make_case(64);
  auto t0 = Clock::now();
  TrainStep step = compile_train_step(*c.model, nn::cross_entropy, *c.opt,
                                      c.x.type(), c.y.type());
  double loss = step(c.x, c.y);
  double ms = ms_since(t0);
  if (!std::isfinite(loss))
    fail("kiln_gpu_bench: first step's loss is {}", loss);
  return ms;
}

void bench_steps(int steps) {
  for (int64_t batch : {64, 256, 1024}) {
    StepCase c = make_case(batch);
    TrainStep step = compile_train_step(*c.model, nn::cross_entropy, *c.opt,
                                        c.x.type(), c.y.type());
    double loss = 0;
    for (int i = 0; i < 30; ++i)
      loss = step(c.x, c.y);
    std::vector<double> t;
    for (int i = 0; i < steps; ++i) {
      auto t0 = Clock::now();
      loss = step(c.x, c.y);
      t.push_back(ms_since(t0));
    }
    if (!std::isfinite(loss))
      fail("kiln_gpu_bench: batch {}: loss is {}", batch, loss);
    Stats s = stats(t);
    emit("kiln_step", std::to_string(batch), s.median, s.p90, 0);
  }
}

void bench_update(Backend &cuda, int iters, const std::vector<int64_t> &sizes) {
  const cuda::Driver &d = *cuda::Driver::get(nullptr);
  for (int64_t n : sizes) {
    // Four parameter tensors of n/4 each: one multi-tensor kernel.
    Graph g("sgd_update");
    Value *lr = g.add_input("lr", {DType::f32, {}});
    std::vector<Value *> ops = {lr};
    for (int p = 0; p < 4; ++p)
      for (auto kind : {InputKind::param, InputKind::state, InputKind::state})
        ops.push_back(g.add_input(fmt::format("t{}_{}", p, ops.size()),
                                  {DType::f32, {n / 4}}, kind));
    testing::fused(
        g, "multi_tensor", ops,
        [](Builder &b, const std::vector<Value *> &a) {
          std::vector<Value *> r;
          for (int p = 0; p < 4; ++p) {
            Value *W = a[1 + 3 * p], *V = a[2 + 3 * p], *G = a[3 + 3 * p];
            Value *nv = b.add(b.add(b.mul(V, 0.9), G), b.mul(W, 5e-4));
            r.push_back(b.sub(W, b.mul(nv, a[0])));
            r.push_back(nv);
          }
          return r;
        },
        Attrs{{"chains", std::vector<int64_t>{2, 2, 2, 2}}});
    const Node &f = *g.nodes().back();
    for (int p = 0; p < 4; ++p) {
      g.add_output(f.results[2 * p], 1 + 3 * p);
      g.add_output(f.results[2 * p + 1], 2 + 3 * p);
    }
    std::vector<Array> in;
    for (const GraphInput &gi : g.inputs())
      in.emplace_back(gi.value->type);
    in[0].set(0, 1e-6);
    // Not zeros: zeros can run faster than real data.
    for (size_t k = 1; k < in.size(); ++k) {
      float *p = in[k].as<float>();
      for (int64_t i = 0; i < in[k].numel(); ++i)
        p[i] = 1e-3f * static_cast<float>((i * 2654435761u + k) % 1000);
    }
    auto exe = cuda.compile(g);
    for (int i = 0; i < 3; ++i)
      exe->run(in);
    cuda::check(d, d.cuCtxSynchronize(), "cuCtxSynchronize");
    // Samples of `chunk` back-to-back runs and one synchronisation, so the
    // sync's cost (microseconds; a 16M update is about 80 us on an H200)
    // is spread over the chunk; each sample is the mean run of its chunk.
    const int chunk = iters > 2 ? 10 : 1;
    std::vector<double> t;
    for (int i = 0; i < iters; ++i) {
      auto t0 = Clock::now();
      for (int j = 0; j < chunk; ++j)
        exe->run(in);
      cuda::check(d, d.cuCtxSynchronize(), "cuCtxSynchronize");
      t.push_back(ms_since(t0) / chunk);
    }
    Stats s = stats(t);
    std::string size = n >= (1 << 20) ? fmt::format("{}M", n >> 20)
                                      : fmt::format("{}K", n >> 10);
    emit("fused_update", size, s.median, s.p90, 20.0 * n / (s.median * 1e6));
    exe.reset();

    CUdeviceptr a = 0, b = 0;
    cuda::check(d, d.cuMemAlloc(&a, n * 4), "cuMemAlloc");
    cuda::check(d, d.cuMemAlloc(&b, n * 4), "cuMemAlloc");
    cuda::check(d, d.cuMemsetD8Async(a, 0x3c, n * 4, nullptr), "cuMemsetD8");
    CUevent e0, e1;
    cuda::check(d, d.cuEventCreate(&e0, 0), "cuEventCreate");
    cuda::check(d, d.cuEventCreate(&e1, 0), "cuEventCreate");
    cuda::check(d, d.cuMemcpyDtoDAsync(b, a, n * 4, nullptr), "cuMemcpyDtoD");
    std::vector<double> c;
    for (int i = 0; i < iters; ++i) {
      cuda::check(d, d.cuEventRecord(e0, nullptr), "cuEventRecord");
      cuda::check(d, d.cuMemcpyDtoDAsync(b, a, n * 4, nullptr), "cuMemcpyDtoD");
      cuda::check(d, d.cuEventRecord(e1, nullptr), "cuEventRecord");
      cuda::check(d, d.cuEventSynchronize(e1), "cuEventSynchronize");
      float ms = 0;
      cuda::check(d, d.cuEventElapsedTime(&ms, e0, e1), "cuEventElapsedTime");
      c.push_back(ms);
    }
    Stats cs = stats(c);
    emit("d2d_copy", size, cs.median, cs.p90, 8.0 * n / (cs.median * 1e6));
    d.cuEventDestroy(e0);
    d.cuEventDestroy(e1);
    d.cuMemFree(a);
    d.cuMemFree(b);
  }
}

} // namespace
} // namespace kiln

int main(int argc, char **argv) {
  using namespace kiln;
  bool warm_start = false;
  int steps = 200, iters = 20;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--tsv" && i + 1 < argc)
      tsv_path = argv[++i];
    else if (a == "--warm-start")
      warm_start = true;
    else if (a == "--quick") // the emulated device: few samples, 256K update
      steps = 3, iters = 2;
    else {
      std::fprintf(stderr, "usage: kiln_gpu_bench [--tsv FILE] [--warm-start] "
                           "[--quick]\n");
      return 2;
    }
  }
  try {
    std::string why;
    auto backend = make_cuda_backend_if_available(&why);
    if (!backend) {
      std::printf("error: no usable CUDA device: %s\n", why.c_str());
      return 1;
    }
    Backend &cuda = *backend;
    set_default_backend(std::move(backend));
    if (warm_start) {
      double ms = compile_and_first_step();
      emit("warm_cache_start", "64", ms, ms, 0);
      cuda_shutdown();
      return 0;
    }
    double cold = compile_and_first_step();
    emit("nvrtc_cold", "64", cold, cold, 0);
    // A new process finds the kernels in the on-disk cache just filled.
    std::string self = "/proc/self/exe";
    std::string cmd =
        fmt::format("'{}' --warm-start{}", self,
                    tsv_path.empty() ? std::string()
                                     : fmt::format(" --tsv '{}'", tsv_path));
    char buf[4096];
    ssize_t len = readlink(self.c_str(), buf, sizeof buf - 1);
    if (len > 0)
      cmd =
          fmt::format("'{}' --warm-start{}", std::string(buf, len),
                      tsv_path.empty() ? std::string()
                                       : fmt::format(" --tsv '{}'", tsv_path));
    if (std::system(cmd.c_str()) != 0)
      fail("kiln_gpu_bench: the warm-start run failed");
    bench_steps(steps);
    // The emulated device runs every thread as a fiber: 256M parameters
    // would take hours there; --quick times 256K to show the code runs.
    if (iters > 2)
      bench_update(cuda, iters, {16 << 20, 64 << 20, 256 << 20});
    else
      bench_update(cuda, iters, {256 << 10});
    cuda_shutdown();
    return 0;
  } catch (const std::exception &e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
}
