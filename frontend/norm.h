// Normalisation and embedding as functions of tensors, composed from
// existing IR ops (mean/sum reductions with keepdims, sub, mul, rsqrt, add,
// one_hot, matmul, reshape); the fusion passes turn the statistics into
// reductions with fused epilogues, so no dedicated op is needed. The layers
// nn::LayerNorm, nn::BatchNorm1d/2d and nn::Embedding (frontend/layers.h)
// call these.
//
//   Tensor y = layer_norm(x, {768}, w, b);                 // F.layer_norm
//   Tensor z = batch_norm(x, rm.get(), rv.get(), w, b, /*training=*/true);
#pragma once

#include "frontend/parameter.h"
#include "frontend/tensor.h"

#include <optional>
#include <vector>

namespace kiln {

// torch.nn.functional.layer_norm: normalises over the last
// normalized_shape.size() axes of x (whose sizes must be normalized_shape)
// with the biased variance, then y * weight + bias when they are defined
// (each of shape normalized_shape; an undefined Tensor is none).
Tensor layer_norm(const Tensor &x, const std::vector<int64_t> &normalized_shape,
                  const Tensor &weight = {}, const Tensor &bias = {},
                  double eps = 1e-5);

// torch.nn.functional.batch_norm on x: [N, C, *] (statistics per channel C,
// over every other axis).
// - training (or no running statistics given): normalises with the batch
//   mean and biased variance; when running_mean/running_var are given their
//   new values are assigned (Buffer::assign: the step updates them in place)
//   as (1 - momentum) * running + momentum * batch, with the UNBIASED batch
//   variance for running_var, as torch does.
// - otherwise: normalises with running_mean and running_var.
// weight and bias ([C]) are optional (undefined Tensor: none).
Tensor batch_norm(const Tensor &x, Buffer *running_mean, Buffer *running_var,
                  const Tensor &weight = {}, const Tensor &bias = {},
                  bool training = false, double momentum = 0.1,
                  double eps = 1e-5);
// The same with the momentum a scalar tensor of x's dtype (BatchNorm's
// cumulative average, momentum = 1 / num_batches_tracked, is computed in the
// step).
Tensor batch_norm(const Tensor &x, Buffer *running_mean, Buffer *running_var,
                  const Tensor &weight, const Tensor &bias, bool training,
                  const Tensor &momentum, double eps = 1e-5);

// torch.nn.functional.embedding: rows of weight ([num_embeddings, dim]) at
// the integer indices ([...] -> [..., dim]).
//
// For now this is one_hot(indices) @ weight: exact (one 1 per row), its
// gradient is the scatter-add onehot^T @ dy through matmul's VJP, and it
// fuses, but costs num_embeddings multiply-adds per element. A gather op
// (with a scatter-add VJP) is the planned fast path. An index outside
// [0, num_embeddings) gives a row of zeros (one_hot's behaviour), not an
// error, since the indices are only known when the step runs.
Tensor embedding(const Tensor &indices, const Tensor &weight);

} // namespace kiln
