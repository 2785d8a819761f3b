// A small CNN's compiled training steps (Conv2d with padding, stride,
// dilation and groups, BatchNorm2d, ReLU, MaxPool2d, AvgPool2d, Linear; SGD
// with momentum) on the compiled backends against the reference
// interpreter: losses, every parameter and the running statistics after
// three steps, and an evaluation-mode forward. The CPU backend always; CUDA
// on a GPU or on the emulated device (ctest label cudaemu, test
// cudaemu.frontend), where it must not skip.
#include "frontend/compile.h"
#include "frontend/conv.h"
#include "frontend/device.h"
#include "frontend/layers.h"
#include "frontend/loss.h"
#include "frontend/optim.h"

#include "tests/support/frontend_testing.h"

#include <gtest/gtest.h>

#include <cmath>

namespace kiln {
namespace {

using testing::OnDevice;

Array wave(Shape shape, double phase, DType dtype) {
  Array a(Type{dtype, std::move(shape)});
  for (int64_t i = 0; i < a.numel(); ++i)
    a.set(i, std::sin(0.7 * static_cast<double>(i) + phase) +
                 0.01 * static_cast<double>(i % 7));
  return a;
}

struct SmallCnnImpl : nn::Module {
  nn::Conv2d c1{nullptr}, c2{nullptr};
  nn::BatchNorm2d bn{nullptr};
  nn::MaxPool2d pool{nullptr};
  nn::AvgPool2d avg{nullptr};
  nn::Linear fc{nullptr};
  explicit SmallCnnImpl(DType dtype) {
    Generator g(5);
    c1 = register_module("c1", nn::Conv2d(2, 4, 3,
                                          nn::Conv2dOptions{.padding = 1,
                                                            .dtype = dtype,
                                                            .generator = &g}));
    nn::BatchNormOptions bo;
    bo.dtype = dtype;
    bn = register_module("bn", nn::BatchNorm2d(4, bo));
    pool = register_module("pool", nn::MaxPool2d(2));
    c2 = register_module("c2",
                         nn::Conv2d(4, 6, Size2(2, 3),
                                    nn::Conv2dOptions{.padding = 1,
                                                      .dilation = Size2(2, 1),
                                                      .groups = 2,
                                                      .dtype = dtype,
                                                      .generator = &g}));
    avg = register_module("avg", nn::AvgPool2d(2, 1));
    fc = register_module(
        "fc",
        nn::Linear(54, 3, nn::LinearOptions{.dtype = dtype, .generator = &g}));
  }
  Tensor forward(const Tensor &x) override {
    Tensor h = pool(relu(bn(c1(x))));  // [2, 4, 4, 4]
    return fc(flatten(avg(c2(h)), 1)); // c2: [2, 6, 4, 4], avg: 3x3
  }
};
KILN_MODULE(SmallCnn);

struct Result {
  std::vector<double> losses, params, eval_out;
};

Result run(DType dtype) {
  Trace::discard_active();
  SmallCnn net(dtype);
  optim::SGD opt(net->parameters(), {.lr = 0.05, .momentum = 0.9});
  const Type xt{dtype, {2, 2, 8, 8}}, yt{dtype, {2, 3}};
  auto step = compile_train_step(*net, nn::mse_loss, opt, xt, yt);
  Result r;
  for (int k = 0; k < 3; ++k)
    r.losses.push_back(
        step(wave({2, 2, 8, 8}, k, dtype), wave({2, 3}, 5 + k, dtype)));
  for (const auto &[name, p] : net->named_parameters())
    for (int64_t i = 0; i < p->value().numel(); ++i)
      r.params.push_back(p->value().get(i));
  for (const auto &[name, b] : net->named_buffers())
    for (int64_t i = 0; i < b->value().numel(); ++i)
      r.params.push_back(b->value().get(i));
  net->eval();
  Trace::discard_active();
  Array out = net(Tensor::from(wave({2, 2, 8, 8}, 9, dtype))).to_host();
  for (int64_t i = 0; i < out.numel(); ++i)
    r.eval_out.push_back(out.get(i));
  return r;
}

void expect_matches_interpreter(Device d) {
  for (DType dtype : {DType::f64, DType::f32}) {
    SCOPED_TRACE(dtype_name(dtype));
    Result ref, got;
    {
      OnDevice on(Device::interpreter);
      ref = run(dtype);
    }
    {
      OnDevice on(d);
      got = run(dtype);
    }
    double tol = dtype == DType::f64 ? 1e-11 : 2e-5;
    auto near = [&](const std::vector<double> &a, const std::vector<double> &b,
                    const char *what) {
      ASSERT_EQ(a.size(), b.size()) << what;
      for (size_t i = 0; i < a.size(); ++i)
        EXPECT_NEAR(a[i], b[i], tol * (1 + std::fabs(b[i])))
            << what << " " << i;
    };
    near(got.losses, ref.losses, "loss");
    near(got.params, ref.params, "parameter/buffer");
    near(got.eval_out, ref.eval_out, "eval output");
    // The steps changed the parameters (a run that did nothing would not
    // be a check).
    EXPECT_NE(ref.losses[0], ref.losses[2]);
  }
}

TEST(ConvBackends, CpuTrainsLikeTheInterpreter) {
  std::string why;
  if (!device_available(Device::cpu, &why))
    GTEST_SKIP() << "no CPU backend: " << why;
  expect_matches_interpreter(Device::cpu);
}

TEST(ConvBackends, CudaTrainsLikeTheInterpreter) {
  std::string why;
  if (!device_available(Device::cuda, &why))
    GTEST_SKIP() << "no CUDA device (" << why
                 << "); the emulated one of tests/cudaemu runs this test "
                    "with KILN_CUDA_DRIVER, KILN_NVRTC and KILN_CUBLAS set";
  expect_matches_interpreter(Device::cuda);
}

} // namespace
} // namespace kiln
