#include "frontend/parameter.h"

#include "frontend/trace.h"

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

} // namespace kiln
