// Tensor: a handle to a value of the active trace. Operations record IR
// nodes (types inferred and checked by the Builder, numpy broadcasting for
// elementwise ops); nothing is computed until a value is realized with
// item(), to_host() or kiln::realize(), which compiles and runs the trace
// (see frontend/trace.h).
//
//   Tensor x = Tensor::from(batch_x, "x");
//   Tensor h = relu(matmul(x, w) + b);
//   double s = sum(h).item();
#pragma once

#include "frontend/trace.h"

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace kiln {

class Tensor {
public:
  Tensor() = default; // undefined (e.g. a parameter's grad before backward)
  Tensor(std::shared_ptr<Trace> trace, Value *value)
      : trace_(std::move(trace)), value_(value) {}

  // A data input of the current trace fed with `a` (shared, not copied: the
  // Array's contents when the trace runs are used). An empty name prints as
  // a number.
  static Tensor from(const Array &a, std::string name = "");
  // A constant of the current trace.
  static Tensor scalar(double v, DType dtype = DType::f32);
  static Tensor full(Shape shape, double v, DType dtype = DType::f32);

  bool defined() const { return value_ != nullptr; }
  const Type &type() const { return value_->type; }
  const Shape &shape() const { return value_->type.shape; }
  DType dtype() const { return value_->type.dtype; }
  int rank() const { return value_->type.rank(); }
  int64_t numel() const { return value_->type.numel(); }
  Value *value() const { return value_; }
  Trace &trace() const { return *trace_; }
  const std::shared_ptr<Trace> &trace_ptr() const { return trace_; }

  // Realizes this value (see frontend/trace.h) and returns its one element.
  double item() const;
  // Realizes this value and returns it.
  Array to_host() const;
  // Records d(this)/d(p) for every parameter used in the trace; afterwards
  // Parameter::grad() returns them. A second backward in the same trace
  // accumulates, as torch does.
  void backward() const;

private:
  std::shared_ptr<Trace> trace_;
  Value *value_ = nullptr;
};

// torch.no_grad() for evaluation code: while one is alive (on this thread),
// backward() throws kiln::Error, so an evaluation step can never record a
// backward pass by mistake, and the trace it records is marked no-grad
// (Trace::no_grad), so a backward() through it after the guard is gone
// throws as well. (Evaluation needs no guard to skip autodiff: kiln records
// gradients only when backward() is called.)
//
//   { kiln::NoGradGuard no_grad; auto logits = model(x); ... }
class NoGradGuard {
public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard &) = delete;
  NoGradGuard &operator=(const NoGradGuard &) = delete;

private:
  bool previous_;
};
// False while a NoGradGuard is alive on this thread.
bool grad_enabled();

// Realizes several values of one trace at once (they become the first
// outputs of the step graph, in this order).
std::vector<Array> realize(const std::vector<Tensor> &tensors);

// Host arrays from plain data.
Array make_array(Shape shape, std::span<const float> data);
Array make_array(Shape shape, std::span<const double> data);
Array make_array(Shape shape, std::span<const int32_t> data);
Array make_array(Shape shape, std::span<const int64_t> data);
Array make_scalar(double v, DType dtype = DType::f32);
std::vector<double> to_vector(const Array &a);

// ---- elementwise
// -------------------------------------------------------------
Tensor add(const Tensor &a, const Tensor &b);
Tensor sub(const Tensor &a, const Tensor &b);
Tensor mul(const Tensor &a, const Tensor &b);
Tensor div(const Tensor &a, const Tensor &b);
Tensor pow(const Tensor &a, const Tensor &b);
Tensor pow(const Tensor &a, double e);
Tensor maximum(const Tensor &a, const Tensor &b);
Tensor minimum(const Tensor &a, const Tensor &b);
Tensor neg(const Tensor &x);
Tensor abs(const Tensor &x);
Tensor exp(const Tensor &x);
Tensor log(const Tensor &x);
Tensor sqrt(const Tensor &x);
Tensor rsqrt(const Tensor &x);
Tensor relu(const Tensor &x);
Tensor tanh(const Tensor &x);
Tensor sigmoid(const Tensor &x);
Tensor cast(const Tensor &x, DType to);
// Comparisons give bool tensors.
Tensor eq(const Tensor &a, const Tensor &b);
Tensor ne(const Tensor &a, const Tensor &b);
Tensor lt(const Tensor &a, const Tensor &b);
Tensor le(const Tensor &a, const Tensor &b);
Tensor gt(const Tensor &a, const Tensor &b);
Tensor ge(const Tensor &a, const Tensor &b);
// a where cond else b; cond is bool; all three broadcast.
Tensor where(const Tensor &cond, const Tensor &a, const Tensor &b);

// A scalar of x's dtype, so `x * 2` keeps x's dtype.
Tensor scalar_like(const Tensor &x, double v);

inline Tensor operator+(const Tensor &a, const Tensor &b) { return add(a, b); }
inline Tensor operator-(const Tensor &a, const Tensor &b) { return sub(a, b); }
inline Tensor operator*(const Tensor &a, const Tensor &b) { return mul(a, b); }
inline Tensor operator/(const Tensor &a, const Tensor &b) { return div(a, b); }
inline Tensor operator-(const Tensor &x) { return neg(x); }
inline Tensor operator+(const Tensor &a, double s) {
  return add(a, scalar_like(a, s));
}
inline Tensor operator-(const Tensor &a, double s) {
  return sub(a, scalar_like(a, s));
}
inline Tensor operator*(const Tensor &a, double s) {
  return mul(a, scalar_like(a, s));
}
inline Tensor operator/(const Tensor &a, double s) {
  return div(a, scalar_like(a, s));
}
inline Tensor operator+(double s, const Tensor &a) {
  return add(scalar_like(a, s), a);
}
inline Tensor operator-(double s, const Tensor &a) {
  return sub(scalar_like(a, s), a);
}
inline Tensor operator*(double s, const Tensor &a) {
  return mul(scalar_like(a, s), a);
}
inline Tensor operator/(double s, const Tensor &a) {
  return div(scalar_like(a, s), a);
}
inline Tensor operator<(const Tensor &a, const Tensor &b) { return lt(a, b); }
inline Tensor operator<=(const Tensor &a, const Tensor &b) { return le(a, b); }
inline Tensor operator>(const Tensor &a, const Tensor &b) { return gt(a, b); }
inline Tensor operator>=(const Tensor &a, const Tensor &b) { return ge(a, b); }
inline Tensor operator<(const Tensor &a, double s) {
  return lt(a, scalar_like(a, s));
}
inline Tensor operator<=(const Tensor &a, double s) {
  return le(a, scalar_like(a, s));
}
inline Tensor operator>(const Tensor &a, double s) {
  return gt(a, scalar_like(a, s));
}
inline Tensor operator>=(const Tensor &a, double s) {
  return ge(a, scalar_like(a, s));
}

// ---- reductions (empty axes: all axes)
// ----------------------------------------
Tensor sum(const Tensor &x, std::vector<int64_t> axes = {},
           bool keepdim = false);
Tensor mean(const Tensor &x, std::vector<int64_t> axes = {},
            bool keepdim = false);
Tensor amax(const Tensor &x, std::vector<int64_t> axes = {},
            bool keepdim = false);
Tensor log_softmax(const Tensor &x, int64_t axis = -1);
Tensor softmax(const Tensor &x, int64_t axis = -1);

// ---- layout and linear algebra
// -------------------------------------------------
Tensor matmul(const Tensor &a, const Tensor &b);
// One -1 entry is inferred.
Tensor reshape(const Tensor &x, Shape shape);
// Merges axes start..end (inclusive, negative from the back) into one.
Tensor flatten(const Tensor &x, int64_t start = 0, int64_t end = -1);
// Swaps two axes (torch.transpose); permute reorders all of them.
Tensor transpose(const Tensor &x, int64_t dim0 = -2, int64_t dim1 = -1);
Tensor permute(const Tensor &x, std::vector<int64_t> perm);
Tensor broadcast_to(const Tensor &x, Shape shape);
// labels: integer [...] -> [..., num_classes] of `dtype`.
Tensor one_hot(const Tensor &labels, int64_t num_classes,
               DType dtype = DType::f32);

// ---- erf, gelu, clamp (the ops erf, gelu, clamp of ir/ops.def)
// --------------------------------------------------------------
Tensor erf(const Tensor &x);
// torch.nn.functional.gelu: approximate is "none" (x Phi(x), with erf) or
// "tanh" (its tanh approximation).
Tensor gelu(const Tensor &x, const std::string &approximate = "none");
// torch.clamp with scalar bounds; std::nullopt is no bound (one at least).
// A NaN stays NaN; min > max gives max everywhere.
Tensor clamp(const Tensor &x, std::optional<double> min,
             std::optional<double> max = std::nullopt);

// ---- concat, slice, pad (the ops concat, slice, pad of ir/ops.def)
// ------------------------------------------------------------------
// torch.cat: tensors of one dtype and equal shapes except along `axis`.
Tensor cat(const std::vector<Tensor> &tensors, int64_t axis = 0);
// x[..., start:stop:step, ...] along `axis` with Python's bounds (negative
// counts from the end, clamped); step >= 1; the slice must not be empty.
Tensor slice(const Tensor &x, int64_t axis, int64_t start,
             int64_t stop = std::numeric_limits<int64_t>::max(),
             int64_t step = 1);
// Constant padding; pads = [before_0, after_0, before_1, after_1, ...], one
// pair per axis, each >= 0.
Tensor pad(const Tensor &x, std::vector<int64_t> pads, double value = 0);

// ---- gather (the op gather of ir/ops.def) ---------------------------------
// numpy.take(x, indices, axis): integer (i32/i64) indices of any shape pick
// slices of x along `axis` (negative counts from the end); the result is
// x.shape[:axis] + indices.shape + x.shape[axis+1:]. The gradient for x is
// a scatter_add; an index outside [0, x.shape[axis]) is an error when the
// step runs.
Tensor gather(const Tensor &x, const Tensor &indices, int64_t axis = 0);
// torch.index_select(x, axis, indices): gather with 1-D indices.
Tensor index_select(const Tensor &x, int64_t axis, const Tensor &indices);

} // namespace kiln
