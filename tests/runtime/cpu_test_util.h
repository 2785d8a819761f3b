// Helpers for the CPU backend tests: random inputs, running a graph on the
// CPU backend and on the reference interpreter, comparing the results.
#pragma once

#include "ir/builder.h"
#include "ir/error.h"
#include "ir/graph.h"
#include "passes/autodiff.h"
#include "runtime/backend.h"
#include "runtime/cpu_backend.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
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

// A training step of an MLP with layer widths `widths` (relu between
// layers): mean cross-entropy, the gradients from autodiff, SGD with
// momentum 0.9 and weight decay 5e-4 updating the params (w1, b1, w2, ...)
// and their momenta (m_w1, ...) in place. Inputs: x, y, lr, params, momenta.
inline std::unique_ptr<Graph>
mlp_step_graph(int64_t batch, const std::vector<int64_t> &widths) {
  auto g = std::make_unique<Graph>("mlp_step");
  Value *x = g->add_input("x", {DType::f32, {batch, widths[0]}});
  Value *y = g->add_input("y", {DType::i32, {batch}});
  Value *lr = g->add_input("lr", {DType::f32, {}});
  std::vector<Value *> params;
  for (size_t l = 0; l + 1 < widths.size(); ++l) {
    std::string n = std::to_string(l + 1);
    params.push_back(g->add_input(
        "w" + n, {DType::f32, {widths[l], widths[l + 1]}}, InputKind::param));
    params.push_back(
        g->add_input("b" + n, {DType::f32, {widths[l + 1]}}, InputKind::param));
  }
  std::vector<Value *> moms;
  for (Value *p : params)
    moms.push_back(g->add_input("m_" + p->name, p->type, InputKind::state));
  Builder b(*g);
  Value *h = x;
  for (size_t l = 0; l + 1 < widths.size(); ++l) {
    h = b.add(b.matmul(h, params[2 * l]), params[2 * l + 1]);
    if (l + 2 < widths.size())
      h = b.relu(h);
  }
  Value *logp = b.log_softmax(h);
  Value *nll = b.neg(b.sum(b.mul(b.one_hot(y, widths.back()), logp), {1}));
  Value *loss = b.mean(nll);
  std::vector<Value *> grads = append_gradients(*g, loss, params);
  g->add_output(loss);
  for (size_t i = 0; i < params.size(); ++i) {
    Value *d = b.add(grads[i], b.mul(params[i], 5e-4));
    Value *m = b.add(b.mul(moms[i], 0.9), d);
    Value *p = b.sub(params[i], b.mul(m, lr));
    g->add_output(p, g->input_index(params[i]));
    g->add_output(m, g->input_index(moms[i]));
  }
  return g;
}

// Inputs for mlp_step_graph: params in [-0.1, 0.1) from `seed`, labels
// (7i mod classes), lr 0.05, momenta zero.
inline std::vector<Array> mlp_step_inputs(const Graph &g, int64_t classes,
                                          uint32_t seed) {
  std::vector<Array> in = random_inputs(g, seed, -0.1, 0.1);
  for (int64_t i = 0; i < in[1].numel(); ++i)
    in[1].set(i, (i * 7) % classes);
  in[2].set(0, 0.05);
  size_t first_momentum = 3 + (in.size() - 3) / 2;
  for (size_t k = first_momentum; k < in.size(); ++k)
    for (int64_t i = 0; i < in[k].numel(); ++i)
      in[k].set(i, 0);
  return in;
}

} // namespace kiln::test
