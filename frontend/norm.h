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
// the integer indices ([...] -> [..., dim]): a gather along axis 0, whose
// gradient is a scatter_add of dy into weight's rows. An index outside
// [0, num_embeddings) is an error when the step runs (before it, when the
// indices are a data input of the step).
//
// padding_idx (negative counts from the end, as torch): positions holding
// that index get no gradient into its row. Unlike torch, they read zeros
// rather than the row itself (kiln has no detach to keep the value and drop
// the gradient); nn::Embedding initialises the row to zero and it gets no
// gradient, so the two agree unless the row is written by hand.
Tensor embedding(const Tensor &indices, const Tensor &weight,
                 std::optional<int64_t> padding_idx = std::nullopt);

} // namespace kiln
