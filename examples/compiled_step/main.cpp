// The model of examples/train_loop trained with compile_train_step: the
// whole step (forward, loss, backward, SGD update) is traced once, compiled
// into one executable and replayed with each new batch. Then the trained
// model classifies a fresh batch. Exits non-zero unless the loss falls and
// the accuracy beats chance clearly.
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

  auto step = kiln::compile_train_step(model, kiln::nn::cross_entropy, opt,
                                       {kiln::DType::f32, {kBatch, kFeatures}},
                                       {kiln::DType::i32, {kBatch}});
  double first = 0, last = 0;
  for (int i = 0; i < 100; ++i) {
    kiln::Array x, y;
    make_batch(rng, x, y);
    double l = step(x, y);
    if (i == 0)
      first = l;
    last = l;
    if (i % 20 == 0)
      std::printf("step %3d  loss %.4f\n", i, l);
  }

  // Inference on a batch the model has not seen.
  model.eval();
  kiln::Array x, y;
  make_batch(rng, x, y);
  std::vector<double> logits =
      kiln::to_vector(model(kiln::Tensor::from(x, "x")).to_host());
  int correct = 0;
  for (int64_t i = 0; i < kBatch; ++i) {
    int64_t best = 0;
    for (int64_t c = 1; c < kClasses; ++c)
      if (logits[i * kClasses + c] > logits[i * kClasses + best])
        best = c;
    correct += best == static_cast<int64_t>(y.get(i));
  }
  double accuracy = static_cast<double>(correct) / kBatch;
  std::printf("backend %s: loss %.4f -> %.4f, accuracy %.3f\n",
              std::string(kiln::default_backend().name()).c_str(), first, last,
              accuracy);
  if (!(last < 0.5 * first) || accuracy < 0.75) {
    std::fprintf(stderr, "error: the model did not learn\n");
    return 1;
  }
  return 0;
}
