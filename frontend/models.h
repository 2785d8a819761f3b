// Built-in models, shared by `kiln ir`, `kiln train` and the tests.
#pragma once

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

// The built-in training recipe that `kiln ir` prints and `kiln train` uses:
// SGD with momentum 0.9 and weight decay 5e-4, cross-entropy loss.
struct DefaultRecipe {
  double lr = 0.05;
  double momentum = 0.9;
  double weight_decay = 5e-4;
};

} // namespace kiln
