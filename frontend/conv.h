// Convolution and pooling: torch.nn.functional's conv2d, max_pool2d and
// avg_pool2d as the IR ops of the same names (ir/ops.def), and the layers
// Conv2d, MaxPool2d, AvgPool2d. The frontend checks shapes first so that a
// mistake is reported with the module's path ("conv2 (Conv2d): ...") while
// the model is traced, before any step runs. The passes decompose conv2d
// into im2col + batched GEMM (passes/decompose_windows.cpp).
//
//   Tensor y = conv2d(x, w, b, {.stride = {2, 2}, .padding = {1, 1}});
//   nn::Conv2d conv(1, 32, 3, {.padding = 1});
#pragma once

#include "frontend/module.h"
#include "frontend/random.h"
#include "frontend/tensor.h"

#include <array>

namespace kiln {

// Per-axis (height, width) sizes; a single number means both.
struct Size2 {
  Size2(int64_t v = 0) : h(v), w(v) {} // NOLINT: 3 means {3, 3}
  Size2(int64_t h_, int64_t w_) : h(h_), w(w_) {}
  int64_t h, w;
};

struct Conv2dParams {
  Size2 stride = 1;
  Size2 padding = 0;
  Size2 dilation = 1;
  int64_t groups = 1;
};

// torch.nn.functional.conv2d: x [N, C, H, W], weight [O, C/groups, kh, kw],
// bias [O] or undefined; returns [N, O, Ho, Wo] with
// Ho = (H + 2*padding - dilation*(kh-1) - 1) / stride + 1.
// Errors (prefixed with the calling module's scope, e.g. "conv2 (Conv2d):")
// for a wrong rank, channels not matching the weight, groups not dividing
// the channels, and a kernel larger than the padded input.
Tensor conv2d(const Tensor &x, const Tensor &weight, const Tensor &bias = {},
              const Conv2dParams &params = {});

// torch.nn.functional.max_pool2d / avg_pool2d on [N, C, H, W] (stride 0:
// the kernel size, as torch's default). padding must be at most half the
// kernel, as torch requires.
Tensor max_pool2d(const Tensor &x, Size2 kernel, Size2 stride = 0,
                  Size2 padding = 0);
Tensor avg_pool2d(const Tensor &x, Size2 kernel, Size2 stride = 0,
                  Size2 padding = 0);

namespace nn {

struct Conv2dOptions {
  Size2 stride = 1;
  Size2 padding = 0;
  Size2 dilation = 1;
  int64_t groups = 1;
  bool bias = true;
  DType dtype = DType::f32;
  Generator *generator = nullptr; // nullptr: default_generator()
};

// torch.nn.Conv2d: weight [out, in/groups, kh, kw], bias [out]; torch's
// default initialisation, kaiming_uniform(a = sqrt(5)), which is
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in/groups*kh*kw, for the
// weight and the bias alike (as nn::Linear).
class Conv2dImpl : public Module {
public:
  Conv2dImpl(int64_t in_channels, int64_t out_channels, Size2 kernel_size,
             Conv2dOptions options = {});
  Tensor forward(const Tensor &x) override;
  std::string type_name() const override { return "Conv2d"; }
  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }
  const Conv2dParams &params() const { return params_; }
  std::shared_ptr<Parameter> weight, bias; // bias is null without bias

private:
  int64_t in_, out_;
  Conv2dParams params_;
};
KILN_MODULE(Conv2d);

class MaxPool2dImpl : public Module {
public:
  explicit MaxPool2dImpl(Size2 kernel_size, Size2 stride = 0,
                         Size2 padding = 0);
  Tensor forward(const Tensor &x) override {
    return max_pool2d(x, kernel_, stride_, padding_);
  }
  std::string type_name() const override { return "MaxPool2d"; }

private:
  Size2 kernel_, stride_, padding_;
};
KILN_MODULE(MaxPool2d);

class AvgPool2dImpl : public Module {
public:
  explicit AvgPool2dImpl(Size2 kernel_size, Size2 stride = 0,
                         Size2 padding = 0);
  Tensor forward(const Tensor &x) override {
    return avg_pool2d(x, kernel_, stride_, padding_);
  }
  std::string type_name() const override { return "AvgPool2d"; }

private:
  Size2 kernel_, stride_, padding_;
};
KILN_MODULE(AvgPool2d);

} // namespace nn
} // namespace kiln
