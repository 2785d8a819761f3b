// A user-defined model trained with the familiar loop (zero_grad, forward,
// loss, backward, step) on a small synthetic data set: 4 Gaussian clusters in
// 16 dimensions. Exits non-zero unless the loss falls, so CI
// (tools/examples.sh) notices when training stops working.
#include <kiln/kiln.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

constexpr int64_t kFeatures = 16, kClasses = 4, kBatch = 32;

struct Mlp : kiln::nn::Module {
  kiln::nn::Linear fc1{nullptr}, fc2{nullptr};
  Mlp() {
    fc1 = register_module("fc1", kiln::nn::Linear(kFeatures, 32));
    fc2 = register_module("fc2", kiln::nn::Linear(32, kClasses));
  }
  kiln::Tensor forward(const kiln::Tensor &x) override {
    return fc2(kiln::relu(fc1(x)));
  }
};

// One batch: label c's points scatter around a centre that is +2 on
// feature c and 0 elsewhere.
static void make_batch(std::mt19937 &rng, kiln::Array &x, kiln::Array &y) {
  std::normal_distribution<float> noise(0.0f, 0.5f);
  std::uniform_int_distribution<int32_t> label(0, kClasses - 1);
  std::vector<float> xs(kBatch * kFeatures);
  std::vector<int32_t> ys(kBatch);
  for (int64_t i = 0; i < kBatch; ++i) {
    ys[i] = label(rng);
    for (int64_t j = 0; j < kFeatures; ++j)
      xs[i * kFeatures + j] = noise(rng) + (j == ys[i] ? 2.0f : 0.0f);
  }
  x = kiln::make_array({kBatch, kFeatures}, std::span<const float>(xs));
  y = kiln::make_array({kBatch}, std::span<const int32_t>(ys));
}

int main() {
  kiln::manual_seed(0);
  std::mt19937 rng(0);
  Mlp model;
  kiln::optim::SGDOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  kiln::optim::SGD opt(model.parameters(), o);

  double first = 0, last = 0;
  for (int step = 0; step < 100; ++step) {
    kiln::Array x, y;
    make_batch(rng, x, y);
    opt.zero_grad();
    auto loss = kiln::nn::cross_entropy(model(kiln::Tensor::from(x, "x")),
                                        kiln::Tensor::from(y, "y"));
    loss.backward();
    opt.step();
    double l = loss.item();
    if (step == 0)
      first = l;
    last = l;
    if (step % 20 == 0)
      std::printf("step %3d  loss %.4f\n", step, l);
  }
  std::printf("backend %s: loss %.4f -> %.4f\n",
              std::string(kiln::default_backend().name()).c_str(), first, last);
  if (!(last < 0.5 * first)) {
    std::fprintf(stderr, "error: the loss did not halve\n");
    return 1;
  }
  return 0;
}
