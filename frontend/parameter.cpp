#include "frontend/parameter.h"

#include "frontend/trace.h"
#include "ir/error.h"

namespace kiln {

Array &Parameter::value() {
  sync_device_state();
  mark_host_modified(value_);
  return value_;
}

const Array &Parameter::value() const {
  sync_device_state();
  return value_;
}

Tensor Parameter::tensor() {
  auto t = Trace::current();
  return Tensor(t, t->param(shared_from_this()));
}

Tensor Parameter::grad() const {
  auto t = Trace::active();
  if (!t)
    return {};
  Value *g = t->grad(*this);
  return g ? Tensor(t, g) : Tensor();
}

void zero_grads(const std::vector<std::shared_ptr<Parameter>> &params,
                bool set_to_none) {
  if (set_to_none) {
    if (auto t = Trace::active())
      for (const auto &p : params)
        t->clear_grad(*p);
    return;
  }
  auto t = Trace::current();
  for (const auto &p : params) {
    t->param(p);
    Tensor zeros = Tensor::full(p->type().shape, 0.0, p->type().dtype);
    t->set_grad(*p, zeros.value());
  }
}

Array &Buffer::value() {
  sync_device_state();
  mark_host_modified(value_);
  return value_;
}

const Array &Buffer::value() const {
  sync_device_state();
  return value_;
}

Tensor Buffer::tensor() {
  auto t = Trace::current();
  // The source reads the buffer when the step runs (a loaded checkpoint may
  // have replaced its Array).
  auto self = shared_from_this();
  return Tensor(t, t->state(value_, name_.empty() ? "buffer" : name_,
                            [self] { return self->bound_value(); }));
}

void Buffer::assign(const Tensor &v) {
  if (!v.defined())
    fail("buffer '{}': assigning an undefined tensor", name_);
  if (v.type() != type())
    fail("buffer '{}': assigning {} to a buffer of type {}", name_,
         v.type().str(), type().str());
  tensor(); // the state input must exist before it is assigned
  v.trace().assign_state(value_, v.value());
}

} // namespace kiln
