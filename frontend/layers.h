// The standard layers: Linear, ReLU, Tanh, Sigmoid, Dropout, Flatten.
#pragma once

#include "frontend/module.h"
#include "frontend/random.h"

namespace kiln::nn {

struct LinearOptions {
  bool bias = true;
  DType dtype = DType::f32;
  // Initialization draws from this generator; nullptr: default_generator(),
  // which kiln::manual_seed reseeds.
  Generator *generator = nullptr;
};

// y = x @ weight + bias, weight: [in, out], bias: [out].
//
// The weight is stored [in, out], the transpose of torch's [out, in], so the
// forward pass is one matmul with no transpose node in the step graph (and
// none in its gradient). Initialization is torch's default:
// kaiming_uniform(a = sqrt(5)) reduces to U(-1/sqrt(in), 1/sqrt(in)) for the
// weight, and the bias uses the same bound.
class Linear : public Module {
public:
  Linear(int64_t in_features, int64_t out_features, LinearOptions options = {});
  Tensor forward(const Tensor &x) override;
  std::string type_name() const override { return "Linear"; }

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  std::shared_ptr<Parameter> weight, bias; // bias is null without bias

private:
  int64_t in_, out_;
};

class ReLU : public Module {
public:
  Tensor forward(const Tensor &x) override { return relu(x); }
  std::string type_name() const override { return "ReLU"; }
};

class Tanh : public Module {
public:
  Tensor forward(const Tensor &x) override { return tanh(x); }
  std::string type_name() const override { return "Tanh"; }
};

class Sigmoid : public Module {
public:
  Tensor forward(const Tensor &x) override { return sigmoid(x); }
  std::string type_name() const override { return "Sigmoid"; }
};

// Training: zeroes each element with probability p and scales the kept ones
// by 1/(1-p). The mask comes from an in-graph random_uniform keyed by the
// step's `seed` and `offset` data inputs (frontend/random.h), so every run of
// a compiled step draws a new mask. Evaluation: the identity.
class Dropout : public Module {
public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor &x) override;
  std::string type_name() const override { return "Dropout"; }
  double p() const { return p_; }

private:
  double p_;
};

// Merges axes start..end (default: all but the batch axis).
class Flatten : public Module {
public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1)
      : start_(start_dim), end_(end_dim) {}
  Tensor forward(const Tensor &x) override { return flatten(x, start_, end_); }
  std::string type_name() const override { return "Flatten"; }

private:
  int64_t start_, end_;
};

} // namespace kiln::nn
