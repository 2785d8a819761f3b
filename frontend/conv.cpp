#include "frontend/conv.h"

#include "ir/error.h"

#include <cmath>
#include <limits>

namespace kiln {
namespace {

// Throws kiln::Error prefixed with the calling module's scope ("conv2
// (Conv2d): ...") when there is one, as frontend/norm.cpp does.
template <typename... A>
[[noreturn]] void scoped_fail(const Tensor &x, fmt::format_string<A...> f,
                              A &&...args) {
  std::string msg = fmt::format(f, std::forward<A>(args)...);
  const std::string &scope = x.trace().builder().scope();
  fail("{}", scope.empty() ? msg : scope + ": " + msg);
}

// Checks that the (dilated) kernel fits one spatial axis of the padded
// input, with the module's scope in the error (the op's shape inference
// checks it too, without the input's type); returns the output size. Throws
// when the (dilated) kernel does not fit in the padded input.
int64_t out_size(const Tensor &x, const char *op, const char *axis, int64_t in,
                 int64_t k, int64_t stride, int64_t pad, int64_t dil) {
  int64_t span = dil * (k - 1) + 1;
  if (in + 2 * pad < span)
    scoped_fail(x,
                "{}: kernel {}{} is larger than the padded input {} ({} + "
                "2*{}) along {}, input {}",
                op, k, dil > 1 ? fmt::format(" (dilated {})", span) : "",
                in + 2 * pad, in, pad, axis, x.type().str());
  return (in + 2 * pad - span) / stride + 1;
}

void check_positive(const Tensor &x, const char *op, const char *what, Size2 v,
                    int64_t min) {
  if (v.h < min || v.w < min)
    scoped_fail(x, "{}: {} must be >= {}, got ({}, {})", op, what, min, v.h,
                v.w);
}

// The IR attributes of a window op: each pair only when it is not the
// op's default.
void set_pair(Attrs &a, const char *name, Size2 v, int64_t dflt) {
  if (v.h != dflt || v.w != dflt)
    a.set(name, std::vector<int64_t>{v.h, v.w});
}

Tensor window_op(Op op, std::vector<const Tensor *> in, Attrs attrs) {
  for (const Tensor *t : in)
    if (t->trace_ptr() != in[0]->trace_ptr())
      fail("{}: tensors from different traces cannot be combined", op_name(op));
  in[0]->trace().check_open();
  std::vector<Value *> vs;
  for (const Tensor *t : in)
    vs.push_back(t->value());
  return Tensor(in[0]->trace_ptr(), in[0]->trace().builder().op(
                                        op, std::move(vs), std::move(attrs)));
}

Tensor pool(const Tensor &x, Size2 kernel, Size2 stride, Size2 padding,
            bool is_max) {
  const char *op = is_max ? "max_pool2d" : "avg_pool2d";
  if (!x.defined())
    fail("{}: undefined input", op);
  if (x.rank() != 4)
    scoped_fail(x, "{}: expected a 4D input [N, C, H, W], got {}", op,
                x.type().str());
  if (!is_float(x.dtype()))
    scoped_fail(x, "{}: input must be floating point, got {}", op,
                x.type().str());
  if (stride.h == 0 && stride.w == 0)
    stride = kernel;
  check_positive(x, op, "kernel_size", kernel, 1);
  check_positive(x, op, "stride", stride, 1);
  check_positive(x, op, "padding", padding, 0);
  if (2 * padding.h > kernel.h || 2 * padding.w > kernel.w)
    scoped_fail(x,
                "{}: padding ({}, {}) must be at most half the kernel ({}, {})",
                op, padding.h, padding.w, kernel.h, kernel.w);
  const Shape &s = x.shape();
  out_size(x, op, "height", s[2], kernel.h, stride.h, padding.h, 1);
  out_size(x, op, "width", s[3], kernel.w, stride.w, padding.w, 1);
  Attrs a{{"kernel", std::vector<int64_t>{kernel.h, kernel.w}},
          {"stride", std::vector<int64_t>{stride.h, stride.w}}};
  set_pair(a, "padding", padding, 0);
  return window_op(is_max ? Op::MaxPool2d : Op::AvgPool2d, {&x}, std::move(a));
}

} // namespace

Tensor conv2d(const Tensor &x, const Tensor &weight, const Tensor &bias,
              const Conv2dParams &p) {
  if (!x.defined() || !weight.defined())
    fail("conv2d: undefined input");
  if (x.rank() != 4)
    scoped_fail(x, "conv2d: expected a 4D input [N, C, H, W], got {}",
                x.type().str());
  if (weight.rank() != 4)
    scoped_fail(x, "conv2d: expected a 4D weight [O, C/groups, kh, kw], got {}",
                weight.type().str());
  if (!is_float(x.dtype()) || weight.dtype() != x.dtype())
    scoped_fail(x,
                "conv2d: input and weight must be floating point of one "
                "dtype, got {} and {}",
                x.type().str(), weight.type().str());
  check_positive(x, "conv2d", "stride", p.stride, 1);
  check_positive(x, "conv2d", "padding", p.padding, 0);
  check_positive(x, "conv2d", "dilation", p.dilation, 1);
  const Shape &s = x.shape(), &ws = weight.shape();
  const int64_t c = s[1], o = ws[0], cg = ws[1];
  const int64_t g = p.groups;
  if (g < 1)
    scoped_fail(x, "conv2d: groups must be >= 1, got {}", g);
  if (c % g != 0 || o % g != 0)
    scoped_fail(x,
                "conv2d: groups {} must divide the input channels {} and "
                "the output channels {}",
                g, c, o);
  if (cg * g != c)
    scoped_fail(x,
                "conv2d: input {} has {} channels but the weight {} expects "
                "{} ({} per group x {} groups)",
                x.type().str(), c, weight.type().str(), cg * g, cg, g);
  if (bias.defined() && bias.shape() != Shape{o})
    scoped_fail(x, "conv2d: bias is {}, expected [{}] for weight {}",
                bias.type().str(), o, weight.type().str());
  const Size2 k(ws[2], ws[3]);
  out_size(x, "conv2d", "height", s[2], k.h, p.stride.h, p.padding.h,
           p.dilation.h);
  out_size(x, "conv2d", "width", s[3], k.w, p.stride.w, p.padding.w,
           p.dilation.w);

  Attrs a;
  set_pair(a, "stride", p.stride, 1);
  set_pair(a, "padding", p.padding, 0);
  set_pair(a, "dilation", p.dilation, 1);
  if (g != 1)
    a.set("groups", g);
  Tensor y = window_op(Op::Conv2d, {&x, &weight}, std::move(a));
  if (bias.defined())
    y = y + reshape(bias, {o, 1, 1});
  return y;
}

Tensor max_pool2d(const Tensor &x, Size2 kernel, Size2 stride, Size2 padding) {
  return pool(x, kernel, stride, padding, true);
}

Tensor avg_pool2d(const Tensor &x, Size2 kernel, Size2 stride, Size2 padding) {
  return pool(x, kernel, stride, padding, false);
}

namespace nn {

Conv2dImpl::Conv2dImpl(int64_t in_channels, int64_t out_channels,
                       Size2 kernel_size, Conv2dOptions options)
    : in_(in_channels),
      out_(out_channels), params_{options.stride, options.padding,
                                  options.dilation, options.groups} {
  if (in_channels <= 0 || out_channels <= 0)
    fail("Conv2d({}, {}): channels must be positive", in_channels,
         out_channels);
  if (kernel_size.h <= 0 || kernel_size.w <= 0)
    fail("Conv2d: kernel_size must be positive, got ({}, {})", kernel_size.h,
         kernel_size.w);
  if (options.groups < 1 || in_channels % options.groups != 0 ||
      out_channels % options.groups != 0)
    fail("Conv2d({}, {}): groups {} must divide the input and output channels",
         in_channels, out_channels, options.groups);
  Generator &gen = options.generator ? *options.generator : default_generator();
  const int64_t cg = in_channels / options.groups;
  const int64_t fan_in = cg * kernel_size.h * kernel_size.w;
  double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  Array w(Type{options.dtype, {out_, cg, kernel_size.h, kernel_size.w}});
  for (int64_t i = 0; i < w.numel(); ++i)
    w.set(i, gen.uniform(-bound, bound));
  weight = register_parameter("weight", w);
  if (options.bias) {
    Array b(Type{options.dtype, {out_}});
    for (int64_t i = 0; i < b.numel(); ++i)
      b.set(i, gen.uniform(-bound, bound));
    bias = register_parameter("bias", b);
  }
}

Tensor Conv2dImpl::forward(const Tensor &x) {
  return conv2d(x, weight->tensor(), bias ? bias->tensor() : Tensor(), params_);
}

MaxPool2dImpl::MaxPool2dImpl(Size2 kernel_size, Size2 stride, Size2 padding)
    : kernel_(kernel_size), stride_(stride), padding_(padding) {
  if (kernel_.h <= 0 || kernel_.w <= 0)
    fail("MaxPool2d: kernel_size must be positive, got ({}, {})", kernel_.h,
         kernel_.w);
}

AvgPool2dImpl::AvgPool2dImpl(Size2 kernel_size, Size2 stride, Size2 padding)
    : kernel_(kernel_size), stride_(stride), padding_(padding) {
  if (kernel_.h <= 0 || kernel_.w <= 0)
    fail("AvgPool2d: kernel_size must be positive, got ({}, {})", kernel_.h,
         kernel_.w);
}

} // namespace nn
} // namespace kiln
