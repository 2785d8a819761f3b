// The reference interpreter's implementations of the op table's ops: plain
// loops over row-major data, clear rather than fast.
#include "ir/error.h"
#include "ir/graph.h"
#include "ir/host_tensor.h"
#include "ir/infer.h"
#include "ir/op_impl.h"
#include "ir/scalar_expr.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace kiln {

namespace {

// Offset into a tensor of shape `from`, broadcast to `to`, of the element at
// linear index i of `to`.
struct BroadcastIndex {
  Shape to;
  std::vector<int64_t> strides;
  BroadcastIndex(const Shape &from, const Shape &to_)
      : to(to_), strides(broadcast_strides(from, to_)) {}
  int64_t operator()(int64_t i) const {
    int64_t off = 0;
    for (size_t a = to.size(); a-- > 0;) {
      off += (i % to[a]) * strides[a];
      i /= to[a];
    }
    return off;
  }
};

} // namespace

void eval_elementwise(const Node &n, std::span<const HostTensor *const> in,
                      std::vector<HostTensor> &out) {
  const Type &rt = n.result()->type;
  const ScalarExpr e = scalar_expr(n);
  std::vector<BroadcastIndex> idx;
  for (const HostTensor *t : in)
    idx.emplace_back(t->type.shape, rt.shape);
  HostTensor r(rt);
  double args[3] = {0, 0, 0};
  for (int64_t i = 0; i < r.numel(); ++i) {
    for (size_t k = 0; k < in.size(); ++k)
      args[k] = in[k]->data[idx[k](i)];
    r.data[i] = eval_scalar(e, args);
  }
  out.push_back(std::move(r));
}

void eval_reduce(const Node &n, std::span<const HostTensor *const> in,
                 std::vector<HostTensor> &out) {
  const HostTensor &x = *in[0];
  const Shape &xs = x.type.shape;
  std::vector<int> axes = reduction_axes(n.attrs, x.type.rank());
  // Reduced shape with kept dims, so that a broadcast index maps each input
  // element to its output slot.
  Shape kept = xs;
  int64_t count = 1;
  for (int a : axes) {
    count *= xs[a];
    kept[a] = 1;
  }
  HostTensor r(n.result()->type);
  // Combiner, identity and the divide by the count: the op table's.
  const OpInfo &info = n.info();
  bool is_max = info.combiner() == Combiner::max;
  std::fill(r.data.begin(), r.data.end(), info.reduce_identity());
  auto strides = contiguous_strides(kept);
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t rem = i, o = 0;
    for (size_t a = xs.size(); a-- > 0;) {
      int64_t c = rem % xs[a];
      rem /= xs[a];
      if (kept[a] != 1 || xs[a] == 1)
        o += (kept[a] == 1 ? 0 : c) * strides[a];
    }
    if (is_max)
      r.data[o] = nan_max(r.data[o], x.data[i]);
    else
      r.data[o] += x.data[i];
  }
  if (info.has(kDividesByCount))
    for (double &v : r.data)
      v /= static_cast<double>(count);
  out.push_back(std::move(r));
}

void eval_softmax(const Node &n, std::span<const HostTensor *const> in,
                  std::vector<HostTensor> &out) {
  const HostTensor &x = *in[0];
  const Shape &s = x.type.shape;
  int axis = normalize_axis(attr_int(n, "axis"), x.type.rank());
  int64_t len = s[axis], inner = 1, outer = 1;
  for (int a = axis + 1; a < x.type.rank(); ++a)
    inner *= s[a];
  for (int a = 0; a < axis; ++a)
    outer *= s[a];
  HostTensor r(x.type);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < inner; ++k) {
      auto at = [&](int64_t j) { return (o * len + j) * inner + k; };
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < len; ++j)
        m = std::max(m, x.data[at(j)]);
      double sum = 0;
      for (int64_t j = 0; j < len; ++j)
        sum += std::exp(x.data[at(j)] - m);
      for (int64_t j = 0; j < len; ++j) {
        double z = x.data[at(j)] - m;
        r.data[at(j)] =
            n.op == Op::LogSoftmax ? z - std::log(sum) : std::exp(z) / sum;
      }
    }
  out.push_back(std::move(r));
}

void eval_matmul(const Node &n, std::span<const HostTensor *const> in,
                 std::vector<HostTensor> &out) {
  const HostTensor &a = *in[0], &b = *in[1];
  const Type &rt = n.result()->type;
  int64_t m = a.type.shape[a.type.rank() - 2], k = a.type.shape.back(),
          nn = b.type.shape.back();
  Shape batch(rt.shape.begin(), rt.shape.end() - 2);
  Shape ab(a.type.shape.begin(), a.type.shape.end() - 2);
  Shape bb(b.type.shape.begin(), b.type.shape.end() - 2);
  BroadcastIndex ai(ab, batch), bi(bb, batch);
  HostTensor r(rt);
  for (int64_t p = 0; p < numel(batch); ++p) {
    const double *A = a.data.data() + ai(p) * m * k;
    const double *B = b.data.data() + bi(p) * k * nn;
    double *C = r.data.data() + p * m * nn;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t l = 0; l < k; ++l) {
        double av = A[i * k + l];
        for (int64_t j = 0; j < nn; ++j)
          C[i * nn + j] += av * B[l * nn + j];
      }
  }
  out.push_back(std::move(r));
}

void eval_transpose(const Node &n, std::span<const HostTensor *const> in,
                    std::vector<HostTensor> &out) {
  const HostTensor &x = *in[0];
  const auto &perm = n.attrs.get_ints("perm");
  const Type &rt = n.result()->type;
  auto xs = contiguous_strides(x.type.shape);
  HostTensor r(rt);
  for (int64_t i = 0; i < r.numel(); ++i) {
    int64_t rem = i, off = 0;
    for (size_t a = rt.shape.size(); a-- > 0;) {
      off += (rem % rt.shape[a]) * xs[perm[a]];
      rem /= rt.shape[a];
    }
    r.data[i] = x.data[off];
  }
  out.push_back(std::move(r));
}

void eval_reshape(const Node &n, std::span<const HostTensor *const> in,
                  std::vector<HostTensor> &out) {
  out.emplace_back(n.result()->type, in[0]->data);
}

void eval_broadcast_to(const Node &n, std::span<const HostTensor *const> in,
                       std::vector<HostTensor> &out) {
  const Type &rt = n.result()->type;
  BroadcastIndex idx(in[0]->type.shape, rt.shape);
  HostTensor r(rt);
  for (int64_t i = 0; i < r.numel(); ++i)
    r.data[i] = in[0]->data[idx(i)];
  out.push_back(std::move(r));
}

void eval_concat(const Node &n, std::span<const HostTensor *const> in,
                 std::vector<HostTensor> &out) {
  // The result is, for each index of the axes before `axis`, the operands'
  // contiguous blocks one after the other.
  const Type &rt = n.result()->type;
  int axis = normalize_axis(attr_int(n, "axis"), rt.rank());
  int64_t outer = 1;
  for (int d = 0; d < axis; ++d)
    outer *= rt.shape[d];
  HostTensor r(rt);
  int64_t pos = 0;
  for (int64_t o = 0; o < outer; ++o)
    for (const HostTensor *x : in) {
      int64_t block = outer ? x->numel() / outer : 0;
      for (int64_t k = 0; k < block; ++k)
        r.data[pos++] = x->data[o * block + k];
    }
  out.push_back(std::move(r));
}

void eval_slice(const Node &n, std::span<const HostTensor *const> in,
                std::vector<HostTensor> &out) {
  const HostTensor &x = *in[0];
  SliceBounds sb = slice_bounds(x.type.shape, n.attrs);
  auto xs = contiguous_strides(x.type.shape);
  HostTensor r(n.result()->type);
  for (int64_t i = 0; i < r.numel(); ++i) {
    int64_t rem = i, off = 0;
    for (size_t a = sb.out.size(); a-- > 0;) {
      off += (sb.start[a] + (rem % sb.out[a]) * sb.step[a]) * xs[a];
      rem /= sb.out[a];
    }
    r.data[i] = x.data[off];
  }
  out.push_back(std::move(r));
}

void eval_pad(const Node &n, std::span<const HostTensor *const> in,
              std::vector<HostTensor> &out) {
  const HostTensor &x = *in[0];
  PadBounds pb = pad_bounds(x.type.shape, n.attrs);
  auto xs = contiguous_strides(x.type.shape);
  HostTensor r(n.result()->type);
  for (int64_t i = 0; i < r.numel(); ++i) {
    int64_t rem = i, off = 0;
    bool inside = true;
    for (size_t a = pb.out.size(); a-- > 0;) {
      int64_t t = rem % pb.out[a] - pb.before[a], q = pb.interior[a] + 1;
      rem /= pb.out[a];
      if (t < 0 || t % q != 0 || t / q >= x.type.shape[a])
        inside = false;
      else
        off += (t / q) * xs[a];
    }
    r.data[i] = inside ? x.data[off] : pb.value;
  }
  out.push_back(std::move(r));
}

void eval_one_hot(const Node &n, std::span<const HostTensor *const> in,
                  std::vector<HostTensor> &out) {
  int64_t c = n.attrs.get_int("num_classes");
  HostTensor r(n.result()->type);
  for (int64_t i = 0; i < in[0]->numel(); ++i) {
    double label = in[0]->data[i];
    if (label < 0 || label >= static_cast<double>(c))
      fail("one_hot: label {} at index {} is out of range [0, {})", label, i,
           c);
    r.data[i * c + static_cast<int64_t>(label)] = 1.0;
  }
  out.push_back(std::move(r));
}

} // namespace kiln
