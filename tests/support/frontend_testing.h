// Helpers for the frontend's layer tests (tests/frontend): a scoped device
// choice, a free-standing parameter, and a finite-difference check of the
// gradients that the frontend's backward() gives for such parameters.
//
//   OnDevice on(Device::interpreter);
//   auto x = param("x", wave);
//   EXPECT_TRUE(fd_gradcheck([&] { return sum(layer(x->tensor())); }, {x}));
//
// Graph-level checks (every float input of a graph) are in gradcheck.h.
#pragma once

#include "frontend/device.h"
#include "frontend/parameter.h"
#include "frontend/tensor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace kiln::testing {

// Sets the process-wide device for a scope, then restores the default.
class OnDevice {
public:
  explicit OnDevice(Device d) { set_device(d); }
  ~OnDevice() { reset_device(); }
  OnDevice(const OnDevice &) = delete;
  OnDevice &operator=(const OnDevice &) = delete;
};

inline std::shared_ptr<Parameter> param(std::string name, Array a) {
  return std::make_shared<Parameter>(std::move(name), std::move(a));
}

// backward() of loss_fn() against central differences, h = 1e-6 max(1,
// |p|), for every element of every parameter (f64 parameters: the
// differences need the precision). Passes when |backward - numeric| <=
// 1e-7 + 1e-6 max(|backward|, |numeric|); the failure names the element.
inline ::testing::AssertionResult
fd_gradcheck(const std::function<Tensor()> &loss_fn,
             const std::vector<std::shared_ptr<Parameter>> &params) {
  Trace::discard_active();
  Tensor loss = loss_fn();
  loss.backward();
  std::vector<Tensor> want = {loss};
  for (auto &p : params)
    want.push_back(p->grad());
  std::vector<Array> got = realize(want);
  for (size_t k = 0; k < params.size(); ++k) {
    Array &w = params[k]->value();
    for (int64_t j = 0; j < w.numel(); ++j) {
      double orig = w.get(j), h = 1e-6 * std::max(1.0, std::fabs(orig));
      w.set(j, orig + h);
      double fp = loss_fn().item();
      w.set(j, orig - h);
      double fm = loss_fn().item();
      w.set(j, orig);
      double num = (fp - fm) / (2 * h), ana = got[k + 1].get(j);
      double tol = 1e-7 + 1e-6 * std::max(std::fabs(num), std::fabs(ana));
      if (!(std::fabs(num - ana) <= tol))
        return ::testing::AssertionFailure()
               << params[k]->name() << "[" << j << "]: backward " << ana
               << ", finite differences " << num;
    }
  }
  return ::testing::AssertionSuccess();
}

} // namespace kiln::testing
