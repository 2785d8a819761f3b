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
