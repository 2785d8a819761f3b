#include "frontend/norm.h"

#include "ir/error.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace kiln {
namespace {

// Throws kiln::Error prefixed with the calling module's scope ("bn1
// (BatchNorm2d): ...") when there is one.
template <typename... A>
[[noreturn]] void scoped_fail(const Tensor &x, fmt::format_string<A...> f,
                              A &&...args) {
  std::string msg = fmt::format(f, std::forward<A>(args)...);
  const std::string &scope = x.trace().builder().scope();
  fail("{}", scope.empty() ? msg : scope + ": " + msg);
}

} // namespace

Tensor layer_norm(const Tensor &x, const std::vector<int64_t> &normalized_shape,
                  const Tensor &weight, const Tensor &bias, double eps) {
  if (!x.defined())
    fail("layer_norm: undefined input");
  const Shape &s = x.shape();
  int k = static_cast<int>(normalized_shape.size());
  if (k == 0)
    scoped_fail(x, "layer_norm: normalized_shape is empty");
  bool ok = k <= x.rank();
  for (int i = 0; ok && i < k; ++i)
    ok = s[x.rank() - k + i] == normalized_shape[i];
  if (!ok)
    scoped_fail(x,
                "layer_norm: normalized_shape {} does not match the last "
                "axes of the input {}",
                shape_str(normalized_shape), x.type().str());
  if (!is_float(x.dtype()))
    scoped_fail(x, "layer_norm: input must be floating point, got {}",
                x.type().str());
  for (const Tensor *p : {&weight, &bias})
    if (p->defined() && p->shape() != Shape(normalized_shape))
      scoped_fail(x, "layer_norm: {} is {}, expected shape {}",
                  p == &weight ? "weight" : "bias", p->type().str(),
                  shape_str(normalized_shape));
  std::vector<int64_t> axes;
  for (int i = x.rank() - k; i < x.rank(); ++i)
    axes.push_back(i);
  Tensor d = x - mean(x, axes, true);
  Tensor var = mean(d * d, axes, true);
  Tensor y = d * rsqrt(var + eps);
  if (weight.defined())
    y = y * weight;
  if (bias.defined())
    y = y + bias;
  return y;
}

Tensor batch_norm(const Tensor &x, Buffer *running_mean, Buffer *running_var,
                  const Tensor &weight, const Tensor &bias, bool training,
                  double momentum, double eps) {
  if (!x.defined())
    fail("batch_norm: undefined input");
  return batch_norm(x, running_mean, running_var, weight, bias, training,
                    scalar_like(x, momentum), eps);
}

Tensor batch_norm(const Tensor &x, Buffer *running_mean, Buffer *running_var,
                  const Tensor &weight, const Tensor &bias, bool training,
                  const Tensor &momentum, double eps) {
  if (!x.defined())
    fail("batch_norm: undefined input");
  if (x.rank() < 2)
    scoped_fail(x, "batch_norm: expected an input [N, C, ...], got {}",
                x.type().str());
  if (!is_float(x.dtype()))
    scoped_fail(x, "batch_norm: input must be floating point, got {}",
                x.type().str());
  if ((running_mean == nullptr) != (running_var == nullptr))
    scoped_fail(x, "batch_norm: running_mean and running_var must be given "
                   "together");
  const int64_t c = x.shape()[1];
  for (Buffer *b : {running_mean, running_var})
    if (b && b->type() != Type{x.dtype(), {c}})
      scoped_fail(x, "batch_norm: {} is {}, expected {}[{}] for input {}",
                  b->name(), b->type().str(), dtype_name(x.dtype()), c,
                  x.type().str());
  for (const Tensor *p : {&weight, &bias})
    if (p->defined() && p->shape() != Shape{c})
      scoped_fail(x, "batch_norm: {} is {}, expected [{}] for input {}",
                  p == &weight ? "weight" : "bias", p->type().str(), c,
                  x.type().str());

  // Per-channel values broadcast as [1, C, 1, ...].
  Shape bshape(x.rank(), 1);
  bshape[1] = c;
  auto bcast = [&](const Tensor &t) { return reshape(t, bshape); };
  std::vector<int64_t> axes = {0};
  for (int i = 2; i < x.rank(); ++i)
    axes.push_back(i);

  Tensor y;
  if (training || !running_mean) {
    int64_t n = x.numel() / c;
    if (training && n <= 1)
      scoped_fail(x,
                  "batch_norm: expected more than 1 value per channel "
                  "when training, got input {}",
                  x.type().str());
    Tensor m = mean(x, axes, true);
    Tensor d = x - m;
    Tensor var = mean(d * d, axes, true);
    y = d * rsqrt(var + eps);
    if (training && running_mean) {
      // torch: running_var takes the unbiased variance, n / (n - 1) times
      // the biased one used to normalise.
      double unbias = static_cast<double>(n) / static_cast<double>(n - 1);
      Tensor bm = reshape(m, {c}), bv = reshape(var, {c}) * unbias;
      running_mean->assign(running_mean->tensor() * (1.0 - momentum) +
                           bm * momentum);
      running_var->assign(running_var->tensor() * (1.0 - momentum) +
                          bv * momentum);
    }
  } else {
    y = (x - bcast(running_mean->tensor())) *
        bcast(rsqrt(running_var->tensor() + eps));
  }
  if (weight.defined())
    y = y * bcast(weight);
  if (bias.defined())
    y = y + bcast(bias);
  return y;
}

Tensor embedding(const Tensor &indices, const Tensor &weight,
                 std::optional<int64_t> padding_idx) {
  if (!indices.defined() || !weight.defined())
    fail("embedding: undefined input");
  if (weight.rank() != 2)
    scoped_fail(weight,
                "embedding: weight must be [num_embeddings, dim], "
                "got {}",
                weight.type().str());
  if (indices.dtype() != DType::i32 && indices.dtype() != DType::i64)
    scoped_fail(indices, "embedding: indices must be i32 or i64, got {}",
                indices.type().str());
  Tensor rows = gather(weight, indices, 0);
  if (!padding_idx)
    return rows;
  const int64_t v = weight.shape()[0];
  int64_t pad = *padding_idx < 0 ? *padding_idx + v : *padding_idx;
  if (pad < 0 || pad >= v)
    scoped_fail(weight,
                "embedding: padding_idx {} is out of range for {} embeddings",
                *padding_idx, v);
  // where's gradient for the zeros branch is dropped: no gradient reaches
  // the padding row from those positions.
  Shape ks = indices.shape();
  ks.push_back(1);
  Tensor keep = reshape(ne(indices, scalar_like(indices, pad)), ks);
  return where(keep, rows, scalar_like(rows, 0));
}

} // namespace kiln
