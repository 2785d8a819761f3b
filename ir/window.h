// The geometry of the 2-D window ops (conv2d, im2col, col2im, max_pool2d,
// max_pool2d_grad, avg_pool2d), computed and checked once from an input
// shape and a node's attributes, and used by shape inference, the
// interpreter, the decomposition pass and both backends.
//
// Window (ho, wo) with tap (i, j) reads input row ho*sh - ph + i*dh and
// column wo*sw - pw + j*dw; a read outside [0, H) x [0, W) is padding.
#pragma once

#include "ir/attrs.h"
#include "ir/types.h"

#include <string_view>

namespace kiln {

struct Node;

struct Window2d {
  int64_t n = 0, c = 0, h = 0, w = 0; // the input [N, C, H, W]
  int64_t kh = 1, kw = 1;             // kernel
  int64_t sh = 1, sw = 1;             // stride
  int64_t ph = 0, pw = 0;             // padding, each side
  int64_t dh = 1, dw = 1;             // dilation
  int64_t groups = 1;
  int64_t ho = 0, wo = 0; // output spatial size

  int64_t cg() const { return c / groups; }       // channels per group
  int64_t taps() const { return kh * kw; }        // taps per window
  int64_t rows() const { return cg() * kh * kw; } // K of a group's columns
  int64_t cols() const { return ho * wo; }        // L, windows per image
};

// The geometry of `op` over input `in` ([N, C, H, W]) with kernel (kh, kw)
// and the node's `stride`, `padding`, `dilation` (two entries each, absent:
// 1, 0, 1; a pool's absent stride is its kernel) and `groups` attributes.
// Throws kiln::Error naming the op when the input is not 4-D, an attribute
// has the wrong length or range, groups do not divide the channels, or the
// dilated kernel is larger than the padded input.
Window2d window2d(std::string_view op, const Shape &in, int64_t kh, int64_t kw,
                  const Attrs &attrs, bool pool = false);

// The kernel (kh, kw) of a pooling node or an im2col/col2im node: its
// `kernel` attribute, two positive entries.
std::pair<int64_t, int64_t> window_kernel(std::string_view op,
                                          const Attrs &attrs);

// col2im's geometry from its operand [N, groups, K, L] and attributes: the
// image is [N, groups*K/(kh*kw), size[0], size[1]]. Throws when K is not a
// multiple of the taps or L is not that image's window count.
Window2d col2im_window(std::string_view op, const Shape &cols,
                       const Attrs &attrs);

// The geometry of a window node (conv2d, im2col, col2im, max_pool2d,
// max_pool2d_grad, avg_pool2d) from its operand types and attributes.
Window2d window_of(const Node &n);

class Builder;
struct Value;
// im2col of conv2d node n's input x, with n's window attributes: the
// columns its decomposition and its weight gradient multiply.
Value *conv2d_columns(Builder &b, const Node &n, Value *x);

} // namespace kiln
