#include "frontend/loss.h"

#include "ir/error.h"

namespace kiln::nn {

Tensor mse_loss(const Tensor &pred, const Tensor &target) {
  Tensor d = pred - target;
  return mean(d * d);
}

Tensor nll_loss(const Tensor &log_probs, const Tensor &labels) {
  if (log_probs.rank() != 2)
    fail("nll_loss expects log-probabilities [N,C], got {}",
         log_probs.type().str());
  if (labels.rank() != 1 || labels.shape()[0] != log_probs.shape()[0])
    fail("nll_loss expects labels [{}], got {}", log_probs.shape()[0],
         labels.type().str());
  // Traced under the loss's name (unless inside a module's scope), so that
  // a label out of range is reported as one_hot's in nll_loss.
  Builder &b = labels.trace().builder();
  std::string saved = b.scope();
  if (saved.empty())
    b.set_scope("nll_loss");
  Tensor picked;
  try {
    picked = one_hot(labels, log_probs.shape()[1], log_probs.dtype());
  } catch (...) {
    b.set_scope(saved);
    throw;
  }
  b.set_scope(saved);
  // sum over classes then mean over the batch: -mean_i logp[i, y_i].
  return -mean(sum(log_probs * picked, {1}));
}

Tensor cross_entropy(const Tensor &logits, const Tensor &labels) {
  return nll_loss(log_softmax(logits, -1), labels);
}

Tensor l2_penalty(const std::vector<std::shared_ptr<Parameter>> &params,
                  double lambda) {
  if (params.empty())
    fail("l2_penalty: no parameters");
  Tensor total;
  for (const auto &p : params) {
    Tensor w = p->tensor();
    Tensor s = sum(w * w);
    total = total.defined() ? total + s : s;
  }
  return total * (lambda / 2);
}

} // namespace kiln::nn
