#include "ir/window.h"

#include "ir/error.h"
#include "ir/graph.h"

#include <fmt/ranges.h>

namespace kiln {
namespace {

constexpr int64_t kMaxWindowAttr = (int64_t{1} << 31) - 1;

std::pair<int64_t, int64_t> pair_attr(std::string_view op, const Attrs &attrs,
                                      const char *name, int64_t absent,
                                      int64_t min) {
  if (!attrs.has(name))
    return {absent, absent};
  const auto &v = attrs.get_ints(name);
  if (v.size() != 2)
    fail("{}: {} needs 2 entries (height, width), got [{}]", op, name,
         fmt::join(v, ", "));
  if (v[0] < min || v[1] < min)
    fail("{}: {} entries must be >= {}, got [{}]", op, name, min,
         fmt::join(v, ", "));
  // Bounded so that the geometry's products cannot overflow.
  if (v[0] > kMaxWindowAttr || v[1] > kMaxWindowAttr)
    fail("{}: {} entries must be at most {}, got [{}]", op, name,
         kMaxWindowAttr, fmt::join(v, ", "));
  return {v[0], v[1]};
}

int64_t out_extent(std::string_view op, const char *axis, int64_t in, int64_t k,
                   int64_t s, int64_t p, int64_t d) {
  int64_t span = d * (k - 1) + 1;
  if (in + 2 * p < span)
    fail("{}: kernel {}{} is larger than the padded input {} ({} + 2*{}) "
         "along {}",
         op, k, d > 1 ? fmt::format(" (dilated {})", span) : "", in + 2 * p, in,
         p, axis);
  return (in + 2 * p - span) / s + 1;
}

} // namespace

std::pair<int64_t, int64_t> window_kernel(std::string_view op,
                                          const Attrs &attrs) {
  if (!attrs.has("kernel"))
    fail("{}: missing attribute 'kernel'", op);
  return pair_attr(op, attrs, "kernel", 1, 1);
}

Window2d window2d(std::string_view op, const Shape &in, int64_t kh, int64_t kw,
                  const Attrs &attrs, bool pool) {
  if (in.size() != 4)
    fail("{}: expected a 4-D input [N, C, H, W], got {}", op, shape_str(in));
  Window2d g;
  g.n = in[0];
  g.c = in[1];
  g.h = in[2];
  g.w = in[3];
  g.kh = kh;
  g.kw = kw;
  std::tie(g.sh, g.sw) = pair_attr(op, attrs, "stride", 1, 1);
  if (pool && !attrs.has("stride"))
    std::tie(g.sh, g.sw) = std::pair(kh, kw);
  std::tie(g.ph, g.pw) = pair_attr(op, attrs, "padding", 0, 0);
  std::tie(g.dh, g.dw) = pair_attr(op, attrs, "dilation", 1, 1);
  g.groups = attrs.has("groups") ? attrs.get_int("groups") : 1;
  if (g.groups < 1)
    fail("{}: groups must be >= 1, got {}", op, g.groups);
  if (g.c % g.groups != 0)
    fail("{}: groups {} does not divide the {} input channels", op, g.groups,
         g.c);
  if (pool && (2 * g.ph > kh || 2 * g.pw > kw))
    fail("{}: padding ({}, {}) must be at most half the kernel ({}, {})", op,
         g.ph, g.pw, kh, kw);
  if (kh > kMaxWindowAttr || kw > kMaxWindowAttr)
    fail("{}: kernel ({}, {}) is too large", op, kh, kw);
  g.ho = out_extent(op, "height", g.h, kh, g.sh, g.ph, g.dh);
  g.wo = out_extent(op, "width", g.w, kw, g.sw, g.pw, g.dw);
  int64_t rows = 0, cols = 0;
  if (__builtin_mul_overflow(g.cg(), kh * kw, &rows) ||
      __builtin_mul_overflow(g.ho, g.wo, &cols))
    fail("{}: {} channels x {}x{} taps over {}x{} windows is too large", op,
         g.cg(), kh, kw, g.ho, g.wo);
  return g;
}

Window2d col2im_window(std::string_view op, const Shape &cols,
                       const Attrs &attrs) {
  auto [kh, kw] = window_kernel(op, attrs);
  if (cols.size() != 4)
    fail("{}: expected columns [N, groups, K, L], got {}", op, shape_str(cols));
  if (cols[2] % (kh * kw) != 0)
    fail("{}: {} rows per group are not a multiple of the kernel's {} taps", op,
         cols[2], kh * kw);
  if (!attrs.has("size"))
    fail("{}: missing attribute 'size'", op);
  const auto &size = attrs.get_ints("size");
  if (size.size() != 2 || size[0] < 1 || size[1] < 1)
    fail("{}: size needs 2 positive entries (height, width), got [{}]", op,
         fmt::join(size, ", "));
  Attrs ga = attrs;
  ga.set("groups", cols[1]);
  Window2d g =
      window2d(op, {cols[0], cols[1] * (cols[2] / (kh * kw)), size[0], size[1]},
               kh, kw, ga);
  if (g.cols() != cols[3])
    fail("{}: {} columns, but a {}x{} image gives {}x{} = {} windows", op,
         cols[3], size[0], size[1], g.ho, g.wo, g.cols());
  return g;
}

Window2d window_of(const Node &n) {
  std::string_view op = op_name(n.op);
  const Shape &in = n.operands[0]->type.shape;
  switch (n.op) {
  case Op::Conv2d: {
    const Shape &w = n.operands[1]->type.shape;
    if (w.size() != 4)
      fail("{}: expected a 4-D weight, got {}", op, shape_str(w));
    return window2d(op, in, w[2], w[3], n.attrs);
  }
  case Op::Im2col: {
    auto [kh, kw] = window_kernel(op, n.attrs);
    return window2d(op, in, kh, kw, n.attrs);
  }
  case Op::Col2im:
    return col2im_window(op, in, n.attrs);
  case Op::MaxPool2d:
  case Op::MaxPool2dGrad:
  case Op::AvgPool2d: {
    auto [kh, kw] = window_kernel(op, n.attrs);
    return window2d(op, in, kh, kw, n.attrs, /*pool=*/true);
  }
  default:
    fail("{} is not a window op", op);
  }
}

} // namespace kiln
