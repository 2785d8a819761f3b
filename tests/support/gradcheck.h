// gradcheck: checks reverse-mode gradients (passes/autodiff.h) against
// central finite differences, both run through the reference interpreter.
//
//   Graph g;  ...  g.add_output(loss);            // first output: a scalar
//   std::vector<HostTensor> in = gradcheck_inputs(g, /*seed=*/1);
//   EXPECT_TRUE(gradcheck(g, in));
//
// For every float input x of `g` (which must be f64, so that differences of
// 1e-6 are meaningful), the check clones `g`, appends d(out0)/dx with
// append_gradients, verifies the result, runs it, and compares each element
// with (f(x + h e_i) - f(x - h e_i)) / 2h, h = eps * max(1, |x_i|). An
// element passes when |autodiff - numeric| <= atol + rtol * max(|autodiff|,
// |numeric|), where atol also covers the rounding noise of the differences
// themselves (about 1e-16 |f| / h). On failure the message names the worst
// element of each failing input: its name, index, both values and the error.
//
// Header-only so that the tests of layers, losses and optimizers reuse it.
#pragma once

#include "ir/graph.h"
#include "ir/host_tensor.h"
#include "ir/interpreter.h"
#include "ir/verifier.h"
#include "passes/autodiff.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::testing {

struct GradcheckOptions {
  double eps = 1e-6;  // finite-difference step, relative to max(1, |x|)
  double rtol = 1e-6; // relative tolerance
  double atol = 1e-8; // absolute tolerance (plus the differences' noise)
  // Names of the inputs to check; empty checks every float input.
  std::vector<std::string> only;
};

namespace detail {

inline std::string index_str(const Shape &shape, int64_t flat) {
  std::vector<int64_t> idx(shape.size());
  for (size_t a = shape.size(); a-- > 0;) {
    idx[a] = flat % shape[a];
    flat /= shape[a];
  }
  return fmt::format("[{}]", fmt::join(idx, ","));
}

inline double scalar_output(const Graph &g,
                            const std::vector<HostTensor> &inputs) {
  return interpret(g, inputs).at(0).item();
}

} // namespace detail

// Deterministic inputs for `g`: floats uniform in [lo, hi), integers in
// [0, int_hi), bools alternating. A small LCG, so results never depend on
// the standard library's distributions.
inline std::vector<HostTensor> gradcheck_inputs(const Graph &g, uint64_t seed,
                                                double lo = -1.0,
                                                double hi = 1.0,
                                                int64_t int_hi = 3) {
  uint64_t state = seed * 6364136223846793005ull + 1442695040888963407ull;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(state >> 11) * (1.0 / 9007199254740992.0);
  };
  std::vector<HostTensor> out;
  for (const GraphInput &in : g.inputs()) {
    HostTensor t(in.value->type);
    for (int64_t i = 0; i < t.numel(); ++i) {
      DType d = t.type.dtype;
      if (is_float(d))
        t.data[i] = round_to(d, lo + (hi - lo) * next());
      else if (is_int(d))
        t.data[i] = std::floor(next() * static_cast<double>(int_hi));
      else
        t.data[i] = i % 2;
    }
    out.push_back(std::move(t));
  }
  return out;
}

// The gradients autodiff computes for `g`'s inputs at `inputs`, in input
// order (float inputs only; others get an empty tensor).
inline std::vector<HostTensor>
autodiff_gradients(const Graph &g, const std::vector<HostTensor> &inputs) {
  auto clone = g.clone();
  std::vector<Value *> wrt;
  std::vector<int> which;
  for (size_t i = 0; i < clone->inputs().size(); ++i)
    if (is_float(clone->inputs()[i].value->type.dtype)) {
      wrt.push_back(clone->inputs()[i].value);
      which.push_back(static_cast<int>(i));
    }
  Value *loss = clone->outputs.at(0).value;
  std::vector<Value *> grads = append_gradients(*clone, loss, wrt);
  clone->outputs.clear();
  for (Value *v : grads)
    clone->add_output(v);
  verify(*clone);
  std::vector<HostTensor> got = interpret(*clone, inputs);
  std::vector<HostTensor> result(inputs.size());
  for (size_t k = 0; k < which.size(); ++k)
    result[which[k]] = std::move(got[k]);
  return result;
}

inline ::testing::AssertionResult
gradcheck(const Graph &g, const std::vector<HostTensor> &inputs,
          const GradcheckOptions &opts = {}) {
  if (g.outputs.empty())
    return ::testing::AssertionFailure()
           << "gradcheck: graph @" << g.name << " has no outputs";
  const Type &lt = g.outputs[0].value->type;
  if (lt.rank() != 0 || !is_float(lt.dtype))
    return ::testing::AssertionFailure()
           << "gradcheck: the first output must be a float scalar, got "
           << lt.str();
  for (const GraphInput &in : g.inputs())
    if (is_float(in.value->type.dtype) && in.value->type.dtype != DType::f64)
      return ::testing::AssertionFailure()
             << "gradcheck: float inputs must be f64, %" << in.value->name
             << " is " << in.value->type.str();

  std::vector<HostTensor> grads;
  try {
    grads = autodiff_gradients(g, inputs);
  } catch (const std::exception &e) {
    return ::testing::AssertionFailure()
           << "gradcheck: autodiff failed: " << e.what();
  }
  double f0 = detail::scalar_output(g, inputs);

  std::string report;
  int checked = 0;
  std::vector<HostTensor> x = inputs;
  for (size_t i = 0; i < g.inputs().size(); ++i) {
    const Value *v = g.inputs()[i].value;
    if (!is_float(v->type.dtype))
      continue;
    if (!opts.only.empty() && std::find(opts.only.begin(), opts.only.end(),
                                        v->name) == opts.only.end())
      continue;
    ++checked;
    const HostTensor &ga = grads[i];
    if (ga.type != v->type)
      return ::testing::AssertionFailure()
             << "gradcheck: gradient of %" << v->name << " is " << ga.type.str()
             << ", expected " << v->type.str();
    int bad = 0;
    int64_t worst = -1;
    double worst_excess = 0, worst_num = 0, worst_err = 0, worst_tol = 0;
    for (int64_t j = 0; j < x[i].numel(); ++j) {
      double orig = x[i].data[j];
      double h = opts.eps * std::max(1.0, std::fabs(orig));
      x[i].data[j] = orig + h;
      double fp = detail::scalar_output(g, x);
      x[i].data[j] = orig - h;
      double fm = detail::scalar_output(g, x);
      x[i].data[j] = orig;
      double num = (fp - fm) / (2 * h);
      double ana = ga.data[j];
      double noise =
          1e-15 * std::max({1.0, std::fabs(f0), std::fabs(fp), std::fabs(fm)}) /
          h;
      double tol = opts.atol + noise +
                   opts.rtol * std::max(std::fabs(ana), std::fabs(num));
      double err = std::fabs(ana - num);
      if (!(err <= tol)) { // also catches NaN
        ++bad;
        double excess = std::isnan(err) ? INFINITY : err / tol;
        if (worst < 0 || excess > worst_excess) {
          worst = j;
          worst_excess = excess;
          worst_num = num;
          worst_err = err;
          worst_tol = tol;
        }
      }
    }
    if (bad)
      report += fmt::format(
          "\n  d(out0)/d%{}{} (element {} of {}, {} of {} out of "
          "tolerance): autodiff {:.17g}, finite differences {:.17g}, "
          "error {:.3g} > tolerance {:.3g}",
          v->name, detail::index_str(v->type.shape, worst), worst,
          v->type.numel(), bad, v->type.numel(), ga.data[worst], worst_num,
          worst_err, worst_tol);
  }
  if (checked == 0)
    return ::testing::AssertionFailure()
           << "gradcheck: graph @" << g.name << " has no float input to check";
  if (!report.empty())
    return ::testing::AssertionFailure()
           << "gradcheck of @" << g.name << " failed:" << report;
  return ::testing::AssertionSuccess();
}

} // namespace kiln::testing
