// Helpers for the CPU backend tests: random inputs, running a graph on the
// CPU backend and on the reference interpreter, comparing the results.
#pragma once

#include "ir/builder.h"
#include "ir/error.h"
#include "ir/graph.h"
#include "runtime/backend.h"
#include "runtime/cpu_backend.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace kiln::test {

// Uniform values in [lo, hi) (integers: rounded; bool: 0/1).
inline Array random_array(const Type &t, std::mt19937 &rng, double lo = -2,
                          double hi = 2) {
  Array a(t);
  std::uniform_real_distribution<double> u(lo, hi);
  for (int64_t i = 0; i < a.numel(); ++i) {
    double v = u(rng);
    if (t.dtype == DType::boolean)
      v = v > (lo + hi) / 2;
    else if (is_int(t.dtype))
      v = std::round(v);
    a.set(i, v);
  }
  return a;
}

inline std::vector<Array> random_inputs(const Graph &g, uint32_t seed,
                                        double lo = -2, double hi = 2) {
  std::mt19937 rng(seed);
  std::vector<Array> in;
  for (auto &i : g.inputs())
    in.push_back(random_array(i.value->type, rng, lo, hi));
  return in;
}

inline std::vector<Array> clone_all(const std::vector<Array> &v) {
  std::vector<Array> c;
  for (const Array &a : v)
    c.push_back(a.clone());
  return c;
}

// Expects equal types and |a - b| <= atol + rtol |b| elementwise.
inline void expect_close(const Array &got, const Array &want,
                         const std::string &what, double rtol = -1,
                         double atol = -1) {
  ASSERT_EQ(got.type(), want.type()) << what;
  bool f64 = want.type().dtype == DType::f64;
  if (rtol < 0)
    rtol = f64 ? 1e-12 : 1e-5;
  if (atol < 0)
    atol = f64 ? 1e-12 : 1e-6;
  int bad = 0;
  for (int64_t i = 0; i < want.numel() && bad < 5; ++i) {
    double g = got.get(i), w = want.get(i);
    if (std::isnan(w) && std::isnan(g))
      continue;
    if (!(std::fabs(g - w) <= atol + rtol * std::fabs(w))) {
      ADD_FAILURE() << what << ": element " << i << " of " << want.type().str()
                    << ": got " << g << ", want " << w;
      ++bad;
    }
  }
}

// Runs `g` on the CPU backend and the interpreter with the same inputs
// (separate copies, since aliased outputs update inputs), `steps` times, and
// compares every output and every updated input after each step.
inline void check_against_interpreter(const Graph &g, std::vector<Array> in,
                                      const std::string &what, int steps = 1,
                                      double rtol = -1, double atol = -1) {
  auto cpu = make_cpu_backend()->compile(g);
  auto ref = make_interpreter_backend()->compile(g);
  std::vector<Array> a = clone_all(in), b = clone_all(in);
  for (int s = 0; s < steps; ++s) {
    std::vector<Array> got = cpu->run(a);
    std::vector<Array> want = ref->run(b);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
      expect_close(got[i], want[i],
                   what + " step " + std::to_string(s) + " output " +
                       std::to_string(i),
                   rtol, atol);
    for (size_t i = 0; i < a.size(); ++i)
      expect_close(a[i], b[i],
                   what + " step " + std::to_string(s) + " input " +
                       std::to_string(i),
                   rtol, atol);
  }
}

// Wraps nodes built by `fn` on a body graph into one fused node of `kind`.
// `fn` gets the body builder and the body inputs and returns the outputs.
template <typename Fn>
Node *append_fused(Graph &g, const std::string &kind,
                   const std::vector<Value *> &operands, Fn fn) {
  auto body = std::make_unique<Graph>("body");
  std::vector<Value *> ins;
  for (size_t i = 0; i < operands.size(); ++i)
    ins.push_back(body->add_input("b" + std::to_string(i), operands[i]->type));
  Builder bb(*body);
  std::vector<Value *> outs = fn(bb, ins);
  std::vector<Type> types;
  for (Value *o : outs) {
    body->add_output(o);
    types.push_back(o->type);
  }
  return g.append(Op::Fused, operands, types, {{"kind", kind}},
                  std::move(body));
}

} // namespace kiln::test
