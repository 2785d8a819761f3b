// The model example of README.md ("Writing a model"), as written there: the
// test Device.ReadmeExampleRunsOnTheBestDevice (tests/frontend/test_device.cpp)
// runs it in a fresh process and checks the backend it prints. Keep the two
// in step.
#include "frontend/compile.h"
#include "frontend/device.h"
#include "frontend/layers.h"
#include "frontend/loss.h"
#include "frontend/optim.h"
#include "ir/error.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

struct Net : kiln::nn::Module {
  kiln::nn::Linear fc1{nullptr}, fc2{nullptr};
  Net() {
    fc1 = register_module("fc1", kiln::nn::Linear(784, 128));
    fc2 = register_module("fc2", kiln::nn::Linear(128, 10));
  }
  kiln::Tensor forward(const kiln::Tensor &x) override {
    return fc2(kiln::relu(fc1(x)));
  }
};

// argv[1]: steps to time (200 when absent).
int main(int argc, char **argv) try {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 200;
  // A batch of 64 made-up images (a pattern per label) and their labels; see
  // frontend/dataloader.h for real data.
  kiln::Array x(kiln::Type{kiln::DType::f32, {64, 784}});
  kiln::Array y(kiln::Type{kiln::DType::i32, {64}});
  for (int64_t i = 0; i < x.numel(); ++i)
    x.set(i, std::sin(0.01 * static_cast<double>((i % 784) * (i / 784 % 10))));
  for (int64_t i = 0; i < y.numel(); ++i)
    y.set(i, static_cast<double>(i % 10));

  Net net;
  kiln::optim::SGDOptions o;
  o.lr = 0.05;
  o.momentum = 0.9;
  kiln::optim::SGD opt(net.parameters(), o);

  // The familiar loop: records the step lazily, compiles it once, replays it.
  // It runs on the best device present (kiln::set_device to choose).
  float l = 0;
  auto now = std::chrono::steady_clock::now;
  auto t0 = now(); // from the end of the first (compiling) step
  for (int i = 0; i <= steps; ++i) {
    opt.zero_grad();
    auto loss = kiln::nn::cross_entropy(net(kiln::Tensor::from(x, "x")),
                                        kiln::Tensor::from(y, "y"));
    loss.backward();
    opt.step();
    l = static_cast<float>(loss.item());
    if (i == 0)
      t0 = now();
  }
  auto t_loop = now();

  // Or compile ahead: the same step graph, as a callable.
  auto step = kiln::compile_train_step(net, kiln::nn::cross_entropy, opt,
                                       {kiln::DType::f32, {64, 784}},
                                       {kiln::DType::i32, {64}});
  double l2 = step(x, y);
  auto t1 = now();
  for (int i = 0; i < steps; ++i)
    l2 = step(x, y);
  auto t2 = now();

  auto ms = [&](auto a, auto b) {
    return std::chrono::duration<double, std::milli>(b - a).count() / steps;
  };
  std::printf("device %s: loss %.4f -> %.4f; %.3f ms/step (loop), "
              "%.3f ms/step (compiled)\n",
              kiln::current_device_name().c_str(), l, l2, ms(t0, t_loop),
              ms(t1, t2));
} catch (const kiln::Error &e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
