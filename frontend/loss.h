// Loss functions (torch.nn.functional's, mean reduction) and the L2 penalty.
#pragma once

#include "frontend/parameter.h"
#include "frontend/tensor.h"

#include <memory>
#include <vector>

namespace kiln::nn {

// mean((pred - target)^2) over every element; shapes broadcast.
Tensor mse_loss(const Tensor &pred, const Tensor &target);

// log_probs: [N, C], labels: integer [N]. The mean over the batch of
// -log_probs[i, labels[i]], picked with one_hot so it is differentiable with
// ordinary IR ops.
Tensor nll_loss(const Tensor &log_probs, const Tensor &labels);

// nll_loss(log_softmax(logits), labels). log_softmax subtracts the row
// maximum, so logits of 1e4 give finite losses and gradients.
Tensor cross_entropy(const Tensor &logits, const Tensor &labels);

// lambda/2 * sum over params of ||w||^2, to add to a loss. Its gradient is
// lambda * w, exactly the term kiln's SGD (with or without momentum or
// nesterov) and Adam add to the gradient for weight_decay = lambda before
// anything else, so loss + l2_penalty(params, wd) follows the same
// trajectory as weight_decay = wd with those optimizers (tested: bitwise
// equal over 10 f64 steps). Only AdamW differs: its decoupled decay shrinks
// the weights outside the adaptive step.
Tensor l2_penalty(const std::vector<std::shared_ptr<Parameter>> &params,
                  double lambda);

} // namespace kiln::nn
