#include "frontend/models.h"

#include "ir/error.h"
#include "ir/escape.h"

#include <charconv>
#include <limits>

namespace kiln {

Mlp::Mlp(const MlpOptions &o) {
  std::vector<int64_t> sizes = {o.in_features};
  sizes.insert(sizes.end(), o.hidden.begin(), o.hidden.end());
  sizes.push_back(o.out_features);
  nn::LinearOptions lo;
  lo.dtype = o.dtype;
  lo.generator = o.generator;
  for (size_t i = 0; i + 1 < sizes.size(); ++i)
    layers_.push_back(register_module("fc" + std::to_string(i + 1),
                                      nn::Linear(sizes[i], sizes[i + 1], lo)));
  if (o.dropout > 0)
    dropout_ = register_module("dropout", nn::Dropout(o.dropout));
}

Tensor Mlp::forward(const Tensor &x) {
  Tensor h = x.rank() > 2 ? flatten(x, 1) : x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    h = layers_[i](h);
    if (i + 1 < layers_.size()) {
      h = relu(h);
      if (dropout_)
        h = dropout_(h);
    }
  }
  return h;
}

std::shared_ptr<Mlp> make_mlp(const MlpOptions &options) {
  return std::make_shared<Mlp>(options);
}

Cnn::Cnn(const CnnOptions &o) {
  nn::Conv2dOptions co{
      .padding = 1, .dtype = o.dtype, .generator = o.generator};
  nn::LinearOptions lo{.dtype = o.dtype, .generator = o.generator};
  nn::BatchNormOptions bo{.dtype = o.dtype};
  conv1_ = register_module("conv1", nn::Conv2d(1, 32, 3, co));
  bn1_ = register_module("bn1", nn::BatchNorm2d(32, bo));
  conv2_ = register_module("conv2", nn::Conv2d(32, 64, 3, co));
  bn2_ = register_module("bn2", nn::BatchNorm2d(64, bo));
  pool_ = register_module("pool", nn::MaxPool2d(2));
  fc1_ = register_module("fc1", nn::Linear(64 * 7 * 7, 128, lo));
  fc2_ = register_module("fc2", nn::Linear(128, 10, lo));
  if (o.dropout > 0)
    dropout_ = register_module("dropout", nn::Dropout(o.dropout));
}

Tensor Cnn::forward(const Tensor &x) {
  Tensor h = x.rank() == 2 ? reshape(x, {x.shape()[0], 1, 28, 28}) : x;
  h = pool_(relu(bn1_(conv1_(h))));
  h = pool_(relu(bn2_(conv2_(h))));
  h = relu(fc1_(flatten(h, 1)));
  if (dropout_)
    h = dropout_(h);
  return fc2_(h);
}

std::shared_ptr<Cnn> make_cnn(const CnnOptions &options) {
  return std::make_shared<Cnn>(options);
}

std::vector<int64_t> parse_mlp_hidden(std::string_view text) {
  std::vector<int64_t> widths;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view item =
        text.substr(start, comma == text.npos ? text.npos : comma - start);
    int64_t w = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), w);
    // from_chars accepts a leading '-'; digits only here.
    if (item.empty() || item[0] < '0' || item[0] > '9' || ec != std::errc() ||
        end != item.data() + item.size() || w < 1 ||
        w > std::numeric_limits<int32_t>::max())
      fail("--hidden '{}': '{}' is not a layer width (a whole number from 1 "
           "to {}; widths are separated by commas, e.g. 256,128)",
           escape_for_message(std::string(text)),
           escape_for_message(std::string(item)),
           std::numeric_limits<int32_t>::max());
    widths.push_back(w);
    if (comma == text.npos)
      break;
    start = comma + 1;
  }
  return widths;
}

std::string mlp_shape_name(const MlpOptions &o) {
  std::string s = std::to_string(o.in_features);
  for (int64_t h : o.hidden)
    s += "-" + std::to_string(h);
  return s + "-" + std::to_string(o.out_features);
}

} // namespace kiln
