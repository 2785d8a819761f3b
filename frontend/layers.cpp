#include "frontend/layers.h"

#include "ir/error.h"

#include <cmath>

namespace kiln::nn {

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features,
                       LinearOptions options)
    : in_(in_features), out_(out_features) {
  if (in_features <= 0 || out_features <= 0)
    fail("Linear({}, {}): features must be positive", in_features,
         out_features);
  Generator &gen = options.generator ? *options.generator : default_generator();
  double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
  Array w(Type{options.dtype, {out_features, in_features}});
  for (int64_t i = 0; i < w.numel(); ++i)
    w.set(i, gen.uniform(-bound, bound));
  weight = register_parameter("weight", w);
  if (options.bias) {
    Array b(Type{options.dtype, {out_features}});
    for (int64_t i = 0; i < b.numel(); ++i)
      b.set(i, gen.uniform(-bound, bound));
    bias = register_parameter("bias", b);
  }
}

Tensor LinearImpl::forward(const Tensor &x) {
  Tensor y = matmul(x, transpose(weight->tensor()));
  return bias ? y + bias->tensor() : y;
}

DropoutImpl::DropoutImpl(double p) : p_(p) {
  if (!(p >= 0 && p <= 1))
    fail("Dropout: p must be in [0, 1], got {}", p);
}

Tensor DropoutImpl::forward(const Tensor &x) {
  if (!is_training() || p_ == 0)
    return x;
  if (p_ == 1)
    return x * 0.0;
  Trace &t = x.trace();
  t.check_open();
  Builder &b = t.builder();
  Value *seed = t.seed();
  Value *offset = t.next_random_offset();
  Tensor u(x.trace_ptr(), b.random_uniform(seed, offset, x.type()));
  // Keep with probability 1-p: u is uniform in [0, 1).
  Tensor keep = u >= p_;
  return where(keep, x * (1.0 / (1.0 - p_)), scalar_like(x, 0.0));
}

GELUImpl::GELUImpl(std::string approximate)
    : approximate_(std::move(approximate)) {
  if (approximate_ != "none" && approximate_ != "tanh")
    fail("GELU: approximate must be \"none\" or \"tanh\", got \"{}\"",
         approximate_);
}

} // namespace kiln::nn

namespace kiln::nn {

namespace {
Array filled(DType dtype, Shape shape, double v) {
  Array a(Type{dtype, std::move(shape)});
  for (int64_t i = 0; i < a.numel(); ++i)
    a.set(i, v);
  return a;
}
} // namespace

LayerNormImpl::LayerNormImpl(std::vector<int64_t> normalized_shape,
                             LayerNormOptions options)
    : shape_(std::move(normalized_shape)), eps_(options.eps) {
  if (shape_.empty())
    fail("LayerNorm: normalized_shape is empty");
  for (int64_t d : shape_)
    if (d <= 0)
      fail("LayerNorm: normalized_shape sizes must be positive, got {}", d);
  if (options.elementwise_affine) {
    weight = register_parameter("weight", filled(options.dtype, shape_, 1.0));
    bias = register_parameter("bias", filled(options.dtype, shape_, 0.0));
  }
}

Tensor LayerNormImpl::forward(const Tensor &x) {
  return layer_norm(x, shape_, weight ? weight->tensor() : Tensor(),
                    bias ? bias->tensor() : Tensor(), eps_);
}

BatchNormImpl::BatchNormImpl(const char *kind, int64_t num_features,
                             BatchNormOptions options)
    : c_(num_features), options_(options) {
  if (num_features <= 0)
    fail("{}({}): num_features must be positive", kind, num_features);
  if (options.momentum && !(*options.momentum >= 0 && *options.momentum <= 1))
    fail("{}: momentum must be in [0, 1], got {}", kind, *options.momentum);
  if (options.affine) {
    weight = register_parameter("weight", filled(options.dtype, {c_}, 1.0));
    bias = register_parameter("bias", filled(options.dtype, {c_}, 0.0));
  }
  if (options.track_running_stats) {
    running_mean =
        register_buffer("running_mean", filled(options.dtype, {c_}, 0.0));
    running_var =
        register_buffer("running_var", filled(options.dtype, {c_}, 1.0));
    // torch keeps it as an int64 scalar; it is in the state_dict.
    num_batches_tracked =
        register_buffer("num_batches_tracked", filled(DType::i64, {}, 0.0));
  }
}

Tensor BatchNormImpl::forward(const Tensor &x) {
  check_input(x);
  bool training = is_training();
  Tensor w = weight ? weight->tensor() : Tensor();
  Tensor b = bias ? bias->tensor() : Tensor();
  if (!running_mean || !training)
    return batch_norm(x, running_mean.get(), running_var.get(), w, b,
                      training || !running_mean, 0.0, options_.eps);
  Tensor count = num_batches_tracked->tensor() + 1.0;
  num_batches_tracked->assign(count);
  Tensor momentum = options_.momentum
                        ? scalar_like(x, *options_.momentum)
                        : 1.0 / cast(count, x.dtype()); // cumulative average
  return batch_norm(x, running_mean.get(), running_var.get(), w, b, true,
                    momentum, options_.eps);
}

void BatchNorm1dImpl::check_input(const Tensor &x) const {
  if (x.rank() != 2 && x.rank() != 3)
    fail("{}: expected a 2D or 3D input [N, {}] or [N, {}, L], got {}",
         scope_name(), c_, c_, x.type().str());
  if (x.shape()[1] != c_)
    fail("{}: expected {} channels (axis 1), got input {}", scope_name(), c_,
         x.type().str());
}

void BatchNorm2dImpl::check_input(const Tensor &x) const {
  if (x.rank() != 4)
    fail("{}: expected a 4D input [N, {}, H, W], got {}", scope_name(), c_,
         x.type().str());
  if (x.shape()[1] != c_)
    fail("{}: expected {} channels (axis 1), got input {}", scope_name(), c_,
         x.type().str());
}

EmbeddingImpl::EmbeddingImpl(int64_t num_embeddings, int64_t embedding_dim,
                             EmbeddingOptions options)
    : num_(num_embeddings), dim_(embedding_dim) {
  if (num_embeddings <= 0 || embedding_dim <= 0)
    fail("Embedding({}, {}): sizes must be positive", num_embeddings,
         embedding_dim);
  Generator &gen = options.generator ? *options.generator : default_generator();
  // N(0, 1) as torch.nn.init.normal_, by Box-Muller from the uniform stream.
  Array w(Type{options.dtype, {num_, dim_}});
  const double two_pi = 6.283185307179586;
  for (int64_t i = 0; i < w.numel(); i += 2) {
    double u1 = 1.0 - gen.uniform(0, 1), u2 = gen.uniform(0, 1);
    double r = std::sqrt(-2.0 * std::log(u1));
    w.set(i, r * std::cos(two_pi * u2));
    if (i + 1 < w.numel())
      w.set(i + 1, r * std::sin(two_pi * u2));
  }
  if (options.padding_idx) {
    int64_t p = *options.padding_idx;
    if (p < -num_ || p >= num_)
      fail("Embedding({}, {}): padding_idx {} is out of range", num_, dim_, p);
    padding_idx_ = p < 0 ? p + num_ : p;
    for (int64_t d = 0; d < dim_; ++d)
      w.set(*padding_idx_ * dim_ + d, 0.0);
  }
  weight = register_parameter("weight", w);
}

Tensor EmbeddingImpl::forward(const Tensor &indices) {
  return embedding(indices, weight->tensor(), padding_idx_);
}

} // namespace kiln::nn
