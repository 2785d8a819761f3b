// The CUDA emitter's 2-D window kernels (im2col, col2im, max_pool2d,
// max_pool2d_grad) compile with NVRTC to PTX and to a cubin for sm_90 over
// a spread of geometries (strides, paddings, dilations, groups, f32 and
// f64); skipped without NVRTC. Their results are checked on the emulated
// device (tests/runtime/test_cuda_window_ops.cpp).
#include "codegen/cuda_emitter.h"
#include "codegen/cuda_nvrtc.h"
#include "tests/runtime/window_test_util.h"

#include <gtest/gtest.h>

#include <array>
#include <random>

namespace kiln::cuda {
namespace {

TEST(CudaWindowCodegen, WindowKernelsCompileWithNvrtc) {
  std::string why;
  if (!nvrtc_available(&why))
    GTEST_SKIP() << "no NVRTC: " << why;
  std::mt19937 rng(3);
  std::vector<test::WindowCase> cases;
  for (DType dt : {DType::f32, DType::f64})
    for (bool pool : {false, true})
      for (int i = 0; i < 3; ++i)
        cases.push_back(test::random_window_case(rng, pool, dt));
  auto g = test::window_cases_graph(cases, "window_ops");
  std::vector<CudaKernel> ks = emit_cuda_kernels(*g);
  ASSERT_EQ(ks.size(), 2 * cases.size());
  int per_op[4] = {0, 0, 0, 0};
  for (const CudaKernel &k : ks)
    for (int o = 0; o < 4; ++o)
      per_op[o] += k.name.ends_with(std::array{
          "_im2col", "_col2im", "_max_pool2d", "_max_pool2d_grad"}[o]);
  for (int o = 0; o < 4; ++o)
    EXPECT_EQ(per_op[o], static_cast<int>(cases.size()) / 2) << o;
  std::string src = emit_cuda_translation_unit(*g);
  NvrtcOptions o;
  for (bool ptx : {true, false}) {
    o.ptx = ptx;
    NvrtcResult r;
    ASSERT_NO_THROW(r = nvrtc_compile(src, g->name, o, nullptr)) << src;
    if (ptx)
      for (const CudaKernel &k : ks)
        EXPECT_NE(r.binary.find(".entry " + k.name), std::string::npos)
            << k.name;
    else
      EXPECT_EQ(r.binary.substr(1, 3), "ELF");
  }
}

} // namespace
} // namespace kiln::cuda
