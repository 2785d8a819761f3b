// Helpers of the pass tests: running a pipeline, comparing a graph with
// its transformed copy through the reference interpreter.
#pragma once

#include "ir/interpreter.h"
#include "ir/verifier.h"
#include "passes/pass_manager.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace kiln::testing {

inline void run_passes(Graph &g, std::string_view pipeline) {
  PassOptions o;
  o.verify_each = true;
  o.read_env = false;
  PassManager pm(o);
  pm.add_pipeline(pipeline);
  pm.run(g);
}

inline int count_ops(const Graph &g, Op op) {
  int k = 0;
  for (auto &n : g.nodes())
    k += n->op == op;
  return k;
}

inline int count_kind(const Graph &g, std::string_view kind) {
  int k = 0;
  for (auto &n : g.nodes())
    if (n->op == Op::Fused && n->attrs.get_str("kind") == kind)
      ++k;
  return k;
}

// Relative comparison; NaN equals NaN.
inline ::testing::AssertionResult same_outputs(const std::vector<HostTensor> &a,
                                               const std::vector<HostTensor> &b,
                                               double rel) {
  if (a.size() != b.size())
    return ::testing::AssertionFailure() << "output counts differ";
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].type != b[i].type)
      return ::testing::AssertionFailure()
             << "output " << i << ": " << a[i].type.str() << " vs "
             << b[i].type.str();
    for (int64_t j = 0; j < a[i].numel(); ++j) {
      double x = a[i].data[j], y = b[i].data[j];
      if (std::isnan(x) && std::isnan(y))
        continue;
      double tol = rel * std::max({1.0, std::fabs(x), std::fabs(y)});
      if (!(std::fabs(x - y) <= tol))
        return ::testing::AssertionFailure()
               << "output " << i << "[" << j << "]: " << x << " vs " << y;
    }
  }
  return ::testing::AssertionSuccess();
}

} // namespace kiln::testing
