// Saving a checkpoint and loading it for inference (frontend/checkpoint.h):
// trains the model of examples/train_loop briefly, saves weights, optimizer
// state and metadata to a safetensors file, loads the weights into a freshly
// initialised model and checks that both predict exactly the same logits.
//
//   checkpoint [PATH]   (default: kiln-example-checkpoint.safetensors in the
//   temp dir)
#include <kiln/kiln.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
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

// The logits `model` gives for x, as evaluation code computes them.
static std::vector<double> predict(Mlp &model, const kiln::Array &x) {
  model.eval();
  return kiln::to_vector(model(kiln::Tensor::from(x, "x")).to_host());
}

int main(int argc, char **argv) {
  std::string path = argc > 1 ? argv[1]
                              : (std::filesystem::temp_directory_path() /
                                 "kiln-example-checkpoint.safetensors")
                                    .string();
  kiln::manual_seed(0);
  std::mt19937 rng(0);

  // Train a little and save.
  Mlp trained;
  kiln::optim::SGDOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  kiln::optim::SGD opt(trained.parameters(), o);
  auto step = kiln::compile_train_step(trained, kiln::nn::cross_entropy, opt,
                                       {kiln::DType::f32, {kBatch, kFeatures}},
                                       {kiln::DType::i32, {kBatch}});
  for (int i = 0; i < 30; ++i) {
    kiln::Array x, y;
    make_batch(rng, x, y);
    step(x, y);
  }
  kiln::save_checkpoint(path, trained, &opt, {{"epoch", "1"}});
  std::printf("saved %s\n", path.c_str());

  // A fresh model (other random weights) loads the weights only: inference
  // needs no optimizer state.
  kiln::manual_seed(1);
  Mlp loaded;
  kiln::CheckpointMetadata meta = kiln::load_checkpoint(path, loaded, nullptr);
  std::printf("loaded %s (epoch %s)\n", path.c_str(), meta["epoch"].c_str());

  kiln::Array x, y;
  make_batch(rng, x, y);
  std::vector<double> want = predict(trained, x);
  std::vector<double> got = predict(loaded, x);
  std::filesystem::remove(path);
  if (got != want) {
    std::fprintf(stderr, "error: the loaded model predicts differently\n");
    return 1;
  }
  std::printf("backend %s: the loaded model reproduces all %zu logits\n",
              std::string(kiln::default_backend().name()).c_str(), got.size());
  return 0;
}
