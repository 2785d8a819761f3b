// The standard layers: Linear, ReLU, Tanh, Sigmoid, Dropout, Flatten. Each
// is a holder (nn::Linear, frontend/module.h) of its module class
// (nn::LinearImpl): `nn::Linear fc(784, 256); Tensor y = fc(x);`.
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

// y = x @ weight^T + bias, weight: [out, in], bias: [out].
//
// The weight is stored [out, in] as in torch.nn.Linear, so a PyTorch
// state_dict loads as is (load_state_dict). The transpose costs nothing: the
// execution plan folds it into the GEMM as a transpose flag, and
// canonicalize turns the weight gradient transpose(x^T dy) into dy^T x, a
// GEMM with a flag as well, so the step has no transpose kernel.
// Initialization is torch's default:
// kaiming_uniform(a = sqrt(5)) reduces to U(-1/sqrt(in), 1/sqrt(in)) for the
// weight, and the bias uses the same bound.
class LinearImpl : public Module {
public:
  LinearImpl(int64_t in_features, int64_t out_features,
             LinearOptions options = {});
  Tensor forward(const Tensor &x) override;
  std::string type_name() const override { return "Linear"; }

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  std::shared_ptr<Parameter> weight, bias; // bias is null without bias

private:
  int64_t in_, out_;
};
KILN_MODULE(Linear);

class ReLUImpl : public Module {
public:
  Tensor forward(const Tensor &x) override { return relu(x); }
  std::string type_name() const override { return "ReLU"; }
};
KILN_MODULE(ReLU);

class TanhImpl : public Module {
public:
  Tensor forward(const Tensor &x) override { return tanh(x); }
  std::string type_name() const override { return "Tanh"; }
};
KILN_MODULE(Tanh);

class SigmoidImpl : public Module {
public:
  Tensor forward(const Tensor &x) override { return sigmoid(x); }
  std::string type_name() const override { return "Sigmoid"; }
};
KILN_MODULE(Sigmoid);

// Training: zeroes each element with probability p and scales the kept ones
// by 1/(1-p). The mask comes from an in-graph random_uniform keyed by the
// step's `seed` and `offset` data inputs (frontend/random.h), so every run of
// a compiled step draws a new mask. Evaluation: the identity.
class DropoutImpl : public Module {
public:
  explicit DropoutImpl(double p = 0.5);
  Tensor forward(const Tensor &x) override;
  std::string type_name() const override { return "Dropout"; }
  double p() const { return p_; }

private:
  double p_;
};
KILN_MODULE(Dropout);

// Merges axes start..end (default: all but the batch axis).
class FlattenImpl : public Module {
public:
  explicit FlattenImpl(int64_t start_dim = 1, int64_t end_dim = -1)
      : start_(start_dim), end_(end_dim) {}
  Tensor forward(const Tensor &x) override { return flatten(x, start_, end_); }
  std::string type_name() const override { return "Flatten"; }

private:
  int64_t start_, end_;
};
KILN_MODULE(Flatten);

// torch.nn.GELU: approximate is "none" (erf) or "tanh".
class GELUImpl : public Module {
public:
  explicit GELUImpl(std::string approximate = "none");
  Tensor forward(const Tensor &x) override { return gelu(x, approximate_); }
  std::string type_name() const override { return "GELU"; }
  const std::string &approximate() const { return approximate_; }

private:
  std::string approximate_;
};
KILN_MODULE(GELU);

} // namespace kiln::nn
