#include "frontend/parameter.h"

namespace kiln {

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
