// GPU benchmark (tools/gpu-check.sh runs it with KILN_BENCH=1): the fused
// SGD-momentum update (one multi-tensor kernel, in place) over 16M and 64M
// parameters, in GB/s of bytes the update must move (read w, v, g; write
// w, v: 20 bytes per f32 parameter), against a device-to-device copy of one
// parameter-sized buffer (8 bytes per element moved). Rows go to stdout and
// to $KILN_BENCH_OUT (markdown). Skips unless KILN_BENCH=1 and a GPU.
#include "runtime/cuda_backend.h"
#include "runtime/cuda_driver.h"
#include "tests/codegen/cuda_test_graphs.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace kiln {
namespace {

void row(const std::string &text) {
  std::printf("%s\n", text.c_str());
  if (const char *p = std::getenv("KILN_BENCH_OUT"); p && *p)
    std::ofstream(p, std::ios::app) << text << "\n";
}

TEST(CudaBench, FusedOptimizerUpdateVsDeviceCopy) {
  const char *on = std::getenv("KILN_BENCH");
  if (!on || std::string(on) != "1")
    GTEST_SKIP() << "set KILN_BENCH=1 to run the GPU benchmark";
  std::string why;
  auto cuda = make_cuda_backend_if_available(&why);
  if (!cuda)
    GTEST_SKIP() << "no CUDA device: " << why;
  const cuda::Driver &d = *cuda::Driver::get(nullptr);
  row("| benchmark | params | ms/step | GB/s |");
  row("| --- | ---: | ---: | ---: |");
  for (int64_t n : {int64_t{16} << 20, int64_t{64} << 20}) {
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
    in[0].set(0, 0.01);
    auto exe = cuda->compile(g);
    for (int i = 0; i < 3; ++i)
      exe->run(in);
    const int iters = 30;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i)
      exe->run(in);
    double ms = std::chrono::duration<double, std::milli>(
                    std::chrono::steady_clock::now() - t0)
                    .count() /
                iters;
    row(fmt::format("| kiln fused SGD-momentum update (1 multi-tensor kernel, "
                    "wall time per run) | {}M | {:.3f} | {:.0f} |",
                    n >> 20, ms, 20.0 * n / (ms * 1e6)));
    // Device-to-device copy of n floats, timed with events.
    CUdeviceptr a = 0, b = 0;
    cuda::check(d, d.cuMemAlloc(&a, n * 4), "cuMemAlloc");
    cuda::check(d, d.cuMemAlloc(&b, n * 4), "cuMemAlloc");
    CUevent e0, e1;
    d.cuEventCreate(&e0, 0);
    d.cuEventCreate(&e1, 0);
    d.cuMemcpyDtoDAsync(b, a, n * 4, nullptr);
    d.cuEventRecord(e0, nullptr);
    for (int i = 0; i < iters; ++i)
      d.cuMemcpyDtoDAsync(b, a, n * 4, nullptr);
    d.cuEventRecord(e1, nullptr);
    d.cuEventSynchronize(e1);
    float total = 0;
    d.cuEventElapsedTime(&total, e0, e1);
    double cms = total / iters;
    row(fmt::format("| device-to-device copy (cuMemcpyDtoD) | {}M | {:.3f} | "
                    "{:.0f} |",
                    n >> 20, cms, 8.0 * n / (cms * 1e6)));
    d.cuEventDestroy(e0);
    d.cuEventDestroy(e1);
    d.cuMemFree(a);
    d.cuMemFree(b);
  }
}

} // namespace
} // namespace kiln
