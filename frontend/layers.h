// The standard layers: Linear, ReLU, Tanh, Sigmoid, Dropout, Flatten, GELU,
// and LayerNorm, BatchNorm1d, BatchNorm2d, Embedding (frontend/norm.h has
// their functional forms). Each is a holder (nn::Linear, frontend/module.h) of
// its module class (nn::LinearImpl): `nn::Linear fc(784, 256); Tensor y =
// fc(x);`.
#pragma once

#include "frontend/module.h"
#include "frontend/norm.h"
#include "frontend/random.h"

#include <optional>
#include <vector>

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

// ---- normalisation and embedding (issue 12) -------------------------------
// Composed from existing ops (frontend/norm.h). Parameter and buffer names
// are PyTorch's state_dict names (weight, bias, running_mean, running_var,
// num_batches_tracked), so a PyTorch state_dict loads by name
// (load_state_dict).

struct LayerNormOptions {
  double eps = 1e-5;
  // weight (ones) and bias (zeros) of shape normalized_shape.
  bool elementwise_affine = true;
  DType dtype = DType::f32;
};

// torch.nn.LayerNorm: normalises over the last normalized_shape.size() axes.
class LayerNormImpl : public Module {
public:
  explicit LayerNormImpl(std::vector<int64_t> normalized_shape,
                         LayerNormOptions options = {});
  // nn::LayerNorm(512): the last axis alone.
  explicit LayerNormImpl(int64_t normalized_shape,
                         LayerNormOptions options = {})
      : LayerNormImpl(std::vector<int64_t>{normalized_shape}, options) {}
  Tensor forward(const Tensor &x) override;
  std::string type_name() const override { return "LayerNorm"; }
  const std::vector<int64_t> &normalized_shape() const { return shape_; }
  double eps() const { return eps_; }
  std::shared_ptr<Parameter> weight, bias; // null without elementwise_affine

private:
  std::vector<int64_t> shape_;
  double eps_;
};
KILN_MODULE(LayerNorm);

struct BatchNormOptions {
  double eps = 1e-5;
  // Weight of the batch statistics in the running ones; std::nullopt: the
  // cumulative average 1 / num_batches_tracked, as torch's momentum=None.
  std::optional<double> momentum = 0.1;
  // weight (ones) and bias (zeros), [C].
  bool affine = true;
  // Keep running_mean (zeros), running_var (ones) and num_batches_tracked
  // (i64 scalar) as buffers, updated in place by each training step and
  // used in eval(). Without, batch statistics are used in both modes.
  bool track_running_stats = true;
  DType dtype = DType::f32;
};

// torch.nn.BatchNorm1d/2d: training normalises with the batch mean and
// biased variance over every axis but C and updates the running statistics
// (running_var with the unbiased variance); eval() normalises with the
// running ones. train() and eval() record different graphs, so a step
// compiled in each mode is its own executable (both cached).
class BatchNormImpl : public Module {
public:
  Tensor forward(const Tensor &x) override;
  int64_t num_features() const { return c_; }
  const BatchNormOptions &options() const { return options_; }
  std::shared_ptr<Parameter> weight, bias;           // null without affine
  std::shared_ptr<Buffer> running_mean, running_var; // null without
  std::shared_ptr<Buffer> num_batches_tracked;       // track_running_stats

protected:
  BatchNormImpl(const char *kind, int64_t num_features,
                BatchNormOptions options);
  // Throws the error for a wrong input rank or channel count.
  virtual void check_input(const Tensor &x) const = 0;

  int64_t c_;
  BatchNormOptions options_;
};

// Input [N, C] or [N, C, L].
class BatchNorm1dImpl : public BatchNormImpl {
public:
  explicit BatchNorm1dImpl(int64_t num_features, BatchNormOptions options = {})
      : BatchNormImpl("BatchNorm1d", num_features, options) {}
  std::string type_name() const override { return "BatchNorm1d"; }

protected:
  void check_input(const Tensor &x) const override;
};
KILN_MODULE(BatchNorm1d);

// Input [N, C, H, W].
class BatchNorm2dImpl : public BatchNormImpl {
public:
  explicit BatchNorm2dImpl(int64_t num_features, BatchNormOptions options = {})
      : BatchNormImpl("BatchNorm2d", num_features, options) {}
  std::string type_name() const override { return "BatchNorm2d"; }

protected:
  void check_input(const Tensor &x) const override;
};
KILN_MODULE(BatchNorm2d);

struct EmbeddingOptions {
  DType dtype = DType::f32;
  Generator *generator = nullptr; // nullptr: default_generator()
  // torch's padding_idx (negative from the end): that row starts at zero
  // and gets no gradient (frontend/norm.h, embedding).
  std::optional<int64_t> padding_idx;
};

// torch.nn.Embedding: weight [num_embeddings, embedding_dim] drawn from
// N(0, 1) as torch does; forward maps integer indices [...] to
// [..., embedding_dim] with a gather (frontend/norm.h, embedding). No
// max_norm yet.
class EmbeddingImpl : public Module {
public:
  EmbeddingImpl(int64_t num_embeddings, int64_t embedding_dim,
                EmbeddingOptions options = {});
  Tensor forward(const Tensor &indices) override;
  std::string type_name() const override { return "Embedding"; }
  int64_t num_embeddings() const { return num_; }
  int64_t embedding_dim() const { return dim_; }
  std::shared_ptr<Parameter> weight;

private:
  int64_t num_, dim_;
  std::optional<int64_t> padding_idx_;
};
KILN_MODULE(Embedding);

} // namespace kiln::nn
