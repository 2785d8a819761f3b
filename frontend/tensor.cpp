#include "frontend/tensor.h"

#include "frontend/parameter.h"
#include "ir/error.h"
#include "passes/autodiff.h"

#include <algorithm>
#include <cmath>

namespace kiln {

namespace {

Trace &open_trace(const Tensor &a) {
  if (!a.defined())
    fail("operation on an undefined tensor");
  a.trace().check_open();
  return a.trace();
}

// The trace shared by the operands; mixing steps is a user error (a tensor
// kept from an earlier, already realized step).
const std::shared_ptr<Trace> &
same_trace(std::initializer_list<const Tensor *> ts) {
  const Tensor &first = **ts.begin();
  open_trace(first);
  for (const Tensor *t : ts) {
    open_trace(*t);
    if (t->trace_ptr() != first.trace_ptr())
      fail("tensors from different traces cannot be combined; a tensor from "
           "a step that was already realized cannot be used in the next one");
  }
  return first.trace_ptr();
}

Tensor unary(const Tensor &x, Value *(Builder::*f)(Value *)) {
  Trace &t = open_trace(x);
  return Tensor(x.trace_ptr(), (t.builder().*f)(x.value()));
}

Tensor binary(const Tensor &a, const Tensor &b,
              Value *(Builder::*f)(Value *, Value *)) {
  const auto &t = same_trace({&a, &b});
  return Tensor(t, (t->builder().*f)(a.value(), b.value()));
}

template <typename T>
Array make_array_of(Shape shape, std::span<const T> data, DType dtype) {
  Array a(Type{dtype, std::move(shape)});
  if (static_cast<int64_t>(data.size()) != a.numel())
    fail("make_array: {} values for shape {}", data.size(),
         shape_str(a.type().shape));
  std::copy(data.begin(), data.end(), a.as<T>());
  return a;
}

} // namespace

// ---- Tensor
// ---------------------------------------------------------------------

Tensor Tensor::from(const Array &a, std::string name) {
  if (!a.defined())
    fail("Tensor::from: the array is empty");
  auto t = Trace::current();
  return Tensor(t, t->add_data(a, std::move(name)));
}

Tensor Tensor::scalar(double v, DType dtype) {
  auto t = Trace::current();
  return Tensor(t, t->builder().scalar(v, dtype));
}

Tensor Tensor::full(Shape shape, double v, DType dtype) {
  auto t = Trace::current();
  Value *s = t->builder().scalar(v, dtype);
  return Tensor(t, t->builder().broadcast_to(s, std::move(shape)));
}

double Tensor::item() const {
  if (defined() && numel() != 1)
    fail("item() needs a tensor of one element, got {}", type().str());
  return realize({*this})[0].get(0);
}

Array Tensor::to_host() const { return realize({*this})[0]; }

namespace {
thread_local bool t_grad_enabled = true;
} // namespace

NoGradGuard::NoGradGuard() : previous_(t_grad_enabled) {
  t_grad_enabled = false;
}

NoGradGuard::~NoGradGuard() { t_grad_enabled = previous_; }

bool grad_enabled() { return t_grad_enabled; }

void Tensor::backward() const {
  Trace &t = open_trace(*this);
  if (!t_grad_enabled)
    fail("backward() inside a NoGradGuard: evaluation code records no "
         "gradients (end the guard's scope before training)");
  if (t.no_grad())
    fail("backward() on a value recorded under a NoGradGuard: its step was "
         "started for evaluation and records no gradients");
  if (rank() != 0 || !is_float(dtype()))
    fail("backward() needs a float scalar, got {}", type().str());
  if (value_->name.empty())
    value_->name = "loss";
  std::vector<std::shared_ptr<Parameter>> params = t.params();
  std::vector<Value *> wrt;
  for (const auto &p : params)
    wrt.push_back(t.param(p));
  // VJP nodes belong to no module; a scope left by forward would mislabel
  // their (internal) errors.
  std::string scope = t.builder().scope();
  t.builder().set_scope("");
  std::vector<Value *> grads = append_gradients(t.graph(), value_, wrt);
  for (size_t i = 0; i < params.size(); ++i) {
    Value *g = grads[i];
    if (Value *old = t.grad(*params[i]))
      g = t.builder().add(old, g);
    if (g->def && g->name.empty())
      g->name = "grad_" + params[i]->name();
    t.set_grad(*params[i], g);
  }
  t.builder().set_scope(scope);
}

std::vector<Array> realize(const std::vector<Tensor> &tensors) {
  if (tensors.empty())
    return {};
  std::shared_ptr<Trace> t = tensors[0].trace_ptr();
  for (const Tensor &x : tensors) {
    if (!x.defined())
      fail("cannot realize an undefined tensor");
    if (x.trace_ptr() != t)
      fail("realize: the tensors belong to different traces");
  }
  std::vector<Array> out;
  if (t->finished()) {
    for (const Tensor &x : tensors) {
      const Array *a = t->realized(x.value());
      if (!a)
        fail("this tensor was not realized with its step; realize every "
             "value you need together with kiln::realize({{...}})");
      out.push_back(*a);
    }
    return out;
  }
  std::vector<Value *> values;
  for (const Tensor &x : tensors)
    values.push_back(x.value());
  Program p = t->finish(values, "");
  std::vector<Array> results = p.run();
  for (size_t i = 0; i < results.size(); ++i) {
    if (i < values.size()) {
      t->set_realized(values[i], results[i]);
      out.push_back(results[i]);
    }
  }
  return out;
}

Array make_array(Shape shape, std::span<const float> data) {
  return make_array_of(std::move(shape), data, DType::f32);
}
Array make_array(Shape shape, std::span<const double> data) {
  return make_array_of(std::move(shape), data, DType::f64);
}
Array make_array(Shape shape, std::span<const int32_t> data) {
  return make_array_of(std::move(shape), data, DType::i32);
}
Array make_array(Shape shape, std::span<const int64_t> data) {
  return make_array_of(std::move(shape), data, DType::i64);
}
Array make_scalar(double v, DType dtype) {
  Array a(Type{dtype, {}});
  a.set(0, v);
  return a;
}
std::vector<double> to_vector(const Array &a) {
  std::vector<double> v(a.numel());
  for (int64_t i = 0; i < a.numel(); ++i)
    v[i] = a.get(i);
  return v;
}

// ---- ops
// ------------------------------------------------------------------------

Tensor add(const Tensor &a, const Tensor &b) {
  return binary(a, b, &Builder::add);
}
Tensor sub(const Tensor &a, const Tensor &b) {
  return binary(a, b, &Builder::sub);
}
Tensor mul(const Tensor &a, const Tensor &b) {
  return binary(a, b, &Builder::mul);
}
Tensor div(const Tensor &a, const Tensor &b) {
  return binary(a, b, &Builder::div);
}
Tensor pow(const Tensor &a, const Tensor &b) {
  return binary(a, b, &Builder::pow);
}
Tensor pow(const Tensor &a, double e) { return pow(a, scalar_like(a, e)); }
Tensor maximum(const Tensor &a, const Tensor &b) {
  return binary(a, b, &Builder::max);
}
Tensor minimum(const Tensor &a, const Tensor &b) {
  return binary(a, b, &Builder::min);
}
Tensor eq(const Tensor &a, const Tensor &b) {
  return binary(a, b, &Builder::eq);
}
Tensor ne(const Tensor &a, const Tensor &b) {
  return binary(a, b, &Builder::ne);
}
Tensor lt(const Tensor &a, const Tensor &b) {
  return binary(a, b, &Builder::lt);
}
Tensor le(const Tensor &a, const Tensor &b) {
  return binary(a, b, &Builder::le);
}
Tensor gt(const Tensor &a, const Tensor &b) {
  return binary(a, b, &Builder::gt);
}
Tensor ge(const Tensor &a, const Tensor &b) {
  return binary(a, b, &Builder::ge);
}

Tensor neg(const Tensor &x) { return unary(x, &Builder::neg); }
Tensor abs(const Tensor &x) { return unary(x, &Builder::abs); }
Tensor exp(const Tensor &x) { return unary(x, &Builder::exp); }
Tensor log(const Tensor &x) { return unary(x, &Builder::log); }
Tensor sqrt(const Tensor &x) { return unary(x, &Builder::sqrt); }
Tensor rsqrt(const Tensor &x) { return unary(x, &Builder::rsqrt); }
Tensor relu(const Tensor &x) { return unary(x, &Builder::relu); }
Tensor tanh(const Tensor &x) { return unary(x, &Builder::tanh); }
Tensor sigmoid(const Tensor &x) { return unary(x, &Builder::sigmoid); }

Tensor cast(const Tensor &x, DType to) {
  Trace &t = open_trace(x);
  return Tensor(x.trace_ptr(), t.builder().cast(x.value(), to));
}

Tensor where(const Tensor &cond, const Tensor &a, const Tensor &b) {
  const auto &t = same_trace({&cond, &a, &b});
  return Tensor(t, t->builder().where(cond.value(), a.value(), b.value()));
}

Tensor scalar_like(const Tensor &x, double v) {
  Trace &t = open_trace(x);
  return Tensor(x.trace_ptr(), t.builder().scalar(v, x.dtype()));
}

Tensor sum(const Tensor &x, std::vector<int64_t> axes, bool keepdim) {
  Trace &t = open_trace(x);
  return Tensor(x.trace_ptr(),
                t.builder().sum(x.value(), std::move(axes), keepdim));
}
Tensor mean(const Tensor &x, std::vector<int64_t> axes, bool keepdim) {
  Trace &t = open_trace(x);
  return Tensor(x.trace_ptr(),
                t.builder().mean(x.value(), std::move(axes), keepdim));
}
Tensor amax(const Tensor &x, std::vector<int64_t> axes, bool keepdim) {
  Trace &t = open_trace(x);
  return Tensor(x.trace_ptr(),
                t.builder().amax(x.value(), std::move(axes), keepdim));
}
Tensor log_softmax(const Tensor &x, int64_t axis) {
  Trace &t = open_trace(x);
  return Tensor(x.trace_ptr(), t.builder().log_softmax(x.value(), axis));
}
Tensor softmax(const Tensor &x, int64_t axis) {
  Trace &t = open_trace(x);
  return Tensor(x.trace_ptr(), t.builder().softmax(x.value(), axis));
}

Tensor matmul(const Tensor &a, const Tensor &b) {
  return binary(a, b, &Builder::matmul);
}

Tensor reshape(const Tensor &x, Shape shape) {
  Trace &t = open_trace(x);
  return Tensor(x.trace_ptr(),
                t.builder().reshape(x.value(), std::move(shape)));
}

Tensor flatten(const Tensor &x, int64_t start, int64_t end) {
  open_trace(x);
  if (x.rank() == 0)
    return reshape(x, {1});
  int s = normalize_axis(start, x.rank()), e = normalize_axis(end, x.rank());
  if (s > e)
    fail("flatten: start axis {} is after end axis {}", start, end);
  Shape out(x.shape().begin(), x.shape().begin() + s);
  int64_t merged = 1;
  for (int a = s; a <= e; ++a)
    merged *= x.shape()[a];
  out.push_back(merged);
  out.insert(out.end(), x.shape().begin() + e + 1, x.shape().end());
  return reshape(x, out);
}

Tensor transpose(const Tensor &x, int64_t dim0, int64_t dim1) {
  open_trace(x);
  int a = normalize_axis(dim0, x.rank()), b = normalize_axis(dim1, x.rank());
  std::vector<int64_t> perm(x.rank());
  for (int i = 0; i < x.rank(); ++i)
    perm[i] = i;
  std::swap(perm[a], perm[b]);
  return permute(x, perm);
}

Tensor permute(const Tensor &x, std::vector<int64_t> perm) {
  Trace &t = open_trace(x);
  return Tensor(x.trace_ptr(),
                t.builder().transpose(x.value(), std::move(perm)));
}

Tensor broadcast_to(const Tensor &x, Shape shape) {
  Trace &t = open_trace(x);
  return Tensor(x.trace_ptr(),
                t.builder().broadcast_to(x.value(), std::move(shape)));
}

Tensor one_hot(const Tensor &labels, int64_t num_classes, DType dtype) {
  Trace &t = open_trace(labels);
  return Tensor(labels.trace_ptr(),
                t.builder().one_hot(labels.value(), num_classes, dtype));
}

// ---- erf, gelu, clamp ----------------------------------------------------

Tensor erf(const Tensor &x) {
  Trace &t = open_trace(x);
  return Tensor(x.trace_ptr(), t.builder().op(Op::Erf, {x.value()}));
}

Tensor gelu(const Tensor &x, const std::string &approximate) {
  Trace &t = open_trace(x);
  Attrs attrs;
  if (approximate != "none")
    attrs.set("approximate", approximate);
  return Tensor(x.trace_ptr(),
                t.builder().op(Op::Gelu, {x.value()}, std::move(attrs)));
}

Tensor clamp(const Tensor &x, std::optional<double> min,
             std::optional<double> max) {
  Trace &t = open_trace(x);
  // An integral bound is stored as an integer, so that an integer tensor's
  // clamp prints and checks as one.
  auto bound = [](double v) -> AttrValue {
    if (std::trunc(v) == v && std::fabs(v) < 9.0e15)
      return static_cast<int64_t>(v);
    return v;
  };
  Attrs attrs;
  if (min)
    attrs.set("min", bound(*min));
  if (max)
    attrs.set("max", bound(*max));
  return Tensor(x.trace_ptr(),
                t.builder().op(Op::Clamp, {x.value()}, std::move(attrs)));
}

Tensor cat(const std::vector<Tensor> &tensors, int64_t axis) {
  if (tensors.empty())
    fail("cat expects at least one tensor");
  std::vector<Value *> vs;
  for (const Tensor &x : tensors) {
    same_trace({&tensors[0], &x});
    vs.push_back(x.value());
  }
  Trace &t = open_trace(tensors[0]);
  return Tensor(tensors[0].trace_ptr(),
                t.builder().op(Op::Concat, std::move(vs), {{"axis", axis}}));
}

Tensor slice(const Tensor &x, int64_t axis, int64_t start, int64_t stop,
             int64_t step) {
  Trace &t = open_trace(x);
  const Shape &s = x.value()->type.shape;
  int r = static_cast<int>(s.size());
  if (axis < -r || axis >= r)
    fail("slice axis {} is out of range for rank {}", axis, r);
  int a = normalize_axis(axis, r);
  // Every other axis whole; a stop past the end is the end (so that the IR
  // text shows the size, not INT64_MAX).
  std::vector<int64_t> starts(r, 0), stops(s.begin(), s.end()), steps(r, 1);
  starts[a] = start;
  stops[a] = std::min(stop, s[a]);
  steps[a] = step;
  Attrs attrs{{"starts", starts}, {"stops", stops}};
  if (step != 1)
    attrs.set("steps", steps);
  return Tensor(x.trace_ptr(),
                t.builder().op(Op::Slice, {x.value()}, std::move(attrs)));
}

Tensor gather(const Tensor &x, const Tensor &indices, int64_t axis) {
  const auto &t = same_trace({&x, &indices});
  return Tensor(t, t->builder().op(Op::Gather, {x.value(), indices.value()},
                                   {{"axis", axis}}));
}

Tensor index_select(const Tensor &x, int64_t axis, const Tensor &indices) {
  if (indices.defined() && indices.rank() != 1)
    fail("index_select: indices must be 1-D, got {}", indices.type().str());
  return gather(x, indices, axis);
}

Tensor pad(const Tensor &x, std::vector<int64_t> pads, double value) {
  Trace &t = open_trace(x);
  Attrs attrs{{"pads", std::move(pads)}};
  // An integral value is stored as an integer (as clamp's bounds).
  if (value != 0)
    attrs.set("value", std::trunc(value) == value && std::fabs(value) < 9.0e15
                           ? AttrValue(static_cast<int64_t>(value))
                           : AttrValue(value));
  return Tensor(x.trace_ptr(),
                t.builder().op(Op::Pad, {x.value()}, std::move(attrs)));
}

} // namespace kiln
