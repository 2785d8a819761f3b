#include "frontend/models.h"

#include "ir/error.h"

namespace kiln {

Mlp::Mlp(const MlpOptions &o) {
  std::vector<int64_t> sizes = {o.in_features};
  sizes.insert(sizes.end(), o.hidden.begin(), o.hidden.end());
  sizes.push_back(o.out_features);
  nn::LinearOptions lo;
  lo.dtype = o.dtype;
  lo.generator = o.generator;
  for (size_t i = 0; i + 1 < sizes.size(); ++i)
    layers_.push_back(register_module(
        "fc" + std::to_string(i + 1),
        std::make_shared<nn::Linear>(sizes[i], sizes[i + 1], lo)));
  if (o.dropout > 0)
    dropout_ =
        register_module("dropout", std::make_shared<nn::Dropout>(o.dropout));
}

Tensor Mlp::forward(const Tensor &x) {
  Tensor h = x.rank() > 2 ? flatten(x, 1) : x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    h = (*layers_[i])(h);
    if (i + 1 < layers_.size()) {
      h = relu(h);
      if (dropout_)
        h = (*dropout_)(h);
    }
  }
  return h;
}

std::shared_ptr<Mlp> make_mlp(const MlpOptions &options) {
  return std::make_shared<Mlp>(options);
}

} // namespace kiln
