// Gradients of every layer and loss, two ways, in f64 on the reference
// interpreter:
// - through the frontend: loss.backward(), Parameter::grad() realized, against
//   central differences of the loss realized again with each parameter
//   element nudged (this covers param binding and the trace's bookkeeping);
// - the traced graph alone, through tests/support/gradcheck.h, which also
//   differentiates with respect to the data inputs.
// Inputs that need a gradient are made standalone Parameters.
#include "frontend/layers.h"
#include "frontend/loss.h"
#include "frontend/random.h"
#include "frontend/tensor.h"
#include "tests/support/gradcheck.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>

namespace kiln {
namespace {

using ParamList = std::vector<std::shared_ptr<Parameter>>;

std::shared_ptr<Parameter> param(std::string name, Shape shape, uint64_t seed,
                                 double lo = -1, double hi = 1) {
  Generator g(seed);
  Array a(Type{DType::f64, std::move(shape)});
  for (int64_t i = 0; i < a.numel(); ++i)
    a.set(i, g.uniform(lo, hi));
  return std::make_shared<Parameter>(std::move(name), a);
}

// Keeps elements away from relu's kink so that differences are smooth.
void push_from_zero(Parameter &p) {
  for (int64_t i = 0; i < p.value().numel(); ++i) {
    double v = p.value().get(i);
    if (std::fabs(v) < 0.1)
      p.value().set(i, v < 0 ? v - 0.1 : v + 0.1);
  }
}

Tensor data(Shape shape, uint64_t seed) {
  Generator g(seed);
  Array a(Type{DType::f64, std::move(shape)});
  for (int64_t i = 0; i < a.numel(); ++i)
    a.set(i, g.uniform(-1, 1));
  return Tensor::from(a);
}

// A scalar that weighs every output element differently.
Tensor weigh(const Tensor &out) { return sum(out * data(out.shape(), 77)); }

constexpr uint64_t kSeed = 4242; // every realization sees the same dropout mask

::testing::AssertionResult
frontend_gradcheck(const std::function<Tensor()> &loss_fn,
                   const ParamList &params) {
  manual_seed(kSeed);
  Tensor loss = loss_fn();
  loss.backward();
  std::vector<Tensor> want = {loss};
  for (auto &p : params) {
    if (!p->grad().defined())
      return ::testing::AssertionFailure() << p->name() << " has no grad";
    want.push_back(p->grad());
  }
  std::vector<Array> got = realize(want);
  for (size_t k = 0; k < params.size(); ++k) {
    Array &w = params[k]->value();
    for (int64_t j = 0; j < w.numel(); ++j) {
      double orig = w.get(j), h = 1e-6 * std::max(1.0, std::fabs(orig));
      w.set(j, orig + h);
      manual_seed(kSeed);
      double fp = loss_fn().item();
      w.set(j, orig - h);
      manual_seed(kSeed);
      double fm = loss_fn().item();
      w.set(j, orig);
      double num = (fp - fm) / (2 * h), ana = got[k + 1].get(j);
      double tol = 1e-8 + 1e-6 * std::max(std::fabs(num), std::fabs(ana)) +
                   1e-15 * std::max(1.0, std::fabs(fp)) / h;
      if (!(std::fabs(num - ana) <= tol))
        return ::testing::AssertionFailure()
               << params[k]->name() << "[" << j << "]: backward " << ana
               << ", finite differences " << num;
    }
  }
  return ::testing::AssertionSuccess();
}

// The traced graph of loss_fn, checked by the shared gradcheck on random
// inputs (data and params alike).
::testing::AssertionResult graph_gradcheck(const std::function<Tensor()> &f) {
  TraceScope scope;
  Tensor loss = f();
  Program p = scope.trace()->finish({loss.value()}, "g");
  return testing::gradcheck(p.graph(), testing::gradcheck_inputs(p.graph(), 3));
}

TEST(Grad, Linear) {
  nn::Linear lin(4, 3);
  lin->to(DType::f64);
  auto x = param("x", {5, 4}, 1);
  auto f = [&] { return weigh((*lin)(x->tensor())); };
  EXPECT_TRUE(frontend_gradcheck(f, {lin->weight, lin->bias, x}));
  EXPECT_TRUE(graph_gradcheck(f));
}

TEST(Grad, LinearWithoutBias) {
  nn::LinearOptions o;
  o.bias = false;
  o.dtype = DType::f64;
  nn::Linear lin(3, 2, o);
  EXPECT_EQ(lin->parameters().size(), 1u);
  auto x = param("x", {2, 3}, 2);
  EXPECT_TRUE(frontend_gradcheck([&] { return weigh((*lin)(x->tensor())); },
                                 {lin->weight, x}));
}

TEST(Grad, Activations) {
  std::vector<std::shared_ptr<nn::Module>> acts = {nn::ReLU(), nn::Tanh(),
                                                   nn::Sigmoid()};
  for (auto &act : acts) {
    auto x = param("x", {3, 4}, 3, -2, 2);
    push_from_zero(*x);
    auto f = [&] { return weigh((*act)(x->tensor())); };
    EXPECT_TRUE(frontend_gradcheck(f, {x})) << act->type_name();
  }
}

TEST(Grad, DropoutInTrainingMode) {
  nn::Dropout drop(0.3);
  auto x = param("x", {4, 5}, 4);
  auto f = [&] { return weigh(drop(x->tensor())); };
  EXPECT_TRUE(frontend_gradcheck(f, {x}));
  EXPECT_TRUE(graph_gradcheck(f));
}

TEST(Grad, FlattenAndSequential) {
  nn::LinearOptions o;
  o.dtype = DType::f64;
  nn::Sequential seq(nn::Flatten(), nn::Linear(6, 4, o), nn::Tanh(),
                     nn::Linear(4, 2, o));
  auto x = param("x", {3, 2, 3}, 5);
  ParamList ps = seq->parameters();
  ps.push_back(x);
  auto f = [&] { return weigh((*seq)(x->tensor())); };
  EXPECT_TRUE(frontend_gradcheck(f, ps));
  EXPECT_TRUE(graph_gradcheck(f));
}

Tensor labels(std::vector<int32_t> v) {
  return Tensor::from(make_array({static_cast<int64_t>(v.size())},
                                 std::span<const int32_t>(v)));
}

TEST(Grad, MseLoss) {
  auto pred = param("pred", {4, 3}, 6);
  auto f = [&] { return nn::mse_loss(pred->tensor(), data({4, 3}, 7)); };
  EXPECT_TRUE(frontend_gradcheck(f, {pred}));
  EXPECT_TRUE(graph_gradcheck(f));
  // Value: mean of squared differences, written out.
  manual_seed(0);
  Array p = pred->value(), t = data({4, 3}, 7).to_host();
  double want = 0;
  for (int i = 0; i < 12; ++i)
    want += (p.get(i) - t.get(i)) * (p.get(i) - t.get(i)) / 12;
  EXPECT_NEAR(nn::mse_loss(pred->tensor(), data({4, 3}, 7)).item(), want,
              1e-15);
}

TEST(Grad, NllLoss) {
  auto logp = param("logp", {3, 4}, 8);
  auto f = [&] { return nn::nll_loss(logp->tensor(), labels({3, 0, 2})); };
  EXPECT_TRUE(frontend_gradcheck(f, {logp}));
  Array v = logp->value();
  double want = -(v.get(3) + v.get(4) + v.get(10)) / 3;
  EXPECT_NEAR(f().item(), want, 1e-15);
}

TEST(Grad, CrossEntropy) {
  auto logits = param("logits", {4, 5}, 9, -3, 3);
  auto f = [&] {
    return nn::cross_entropy(logits->tensor(), labels({1, 4, 0, 1}));
  };
  EXPECT_TRUE(frontend_gradcheck(f, {logits}));
  EXPECT_TRUE(graph_gradcheck(f));
  // torch's formula: mean_i (logsumexp(z_i) - z_i[y_i]).
  Array z = logits->value();
  int y[] = {1, 4, 0, 1};
  double want = 0;
  for (int i = 0; i < 4; ++i) {
    double m = -INFINITY, s = 0;
    for (int c = 0; c < 5; ++c)
      m = std::max(m, z.get(i * 5 + c));
    for (int c = 0; c < 5; ++c)
      s += std::exp(z.get(i * 5 + c) - m);
    want += (m + std::log(s) - z.get(i * 5 + y[i])) / 4;
  }
  EXPECT_NEAR(f().item(), want, 1e-14);
}

TEST(Grad, CrossEntropyIsStableForHugeLogits) {
  for (DType dt : {DType::f32, DType::f64}) {
    Array a(Type{dt, {2, 3}});
    double v[] = {1e4, 0, -1e4, 0, 1e4, 0};
    for (int i = 0; i < 6; ++i)
      a.set(i, v[i]);
    auto z = std::make_shared<Parameter>("z", a);
    Tensor loss = nn::cross_entropy(z->tensor(), labels({0, 0}));
    loss.backward();
    std::vector<Array> r = realize({loss, z->grad()});
    // Row 0 is right with certainty (loss 0), row 1 wrong by 1e4.
    EXPECT_NEAR(r[0].get(0), 1e4 / 2, 1e-3) << dtype_name(dt);
    // d/dz = (softmax - onehot) / N: row 0 all ~0, row 1 [-1/2, 1/2, 0].
    double want[] = {0, 0, 0, -0.5, 0.5, 0};
    for (int i = 0; i < 6; ++i) {
      EXPECT_TRUE(std::isfinite(r[1].get(i)));
      EXPECT_NEAR(r[1].get(i), want[i], 1e-6) << i;
    }
  }
}

TEST(Grad, L2PenaltyValueAndGradient) {
  auto a = param("a", {2, 2}, 10), b = param("b", {3}, 11);
  auto f = [&] { return nn::l2_penalty({a, b}, 0.3); };
  EXPECT_TRUE(frontend_gradcheck(f, {a, b}));
  double want = 0;
  for (auto &p : {a, b})
    for (int64_t i = 0; i < p->value().numel(); ++i)
      want += p->value().get(i) * p->value().get(i);
  EXPECT_NEAR(f().item(), 0.15 * want, 1e-15);
}

TEST(Grad, BackwardTwiceAccumulatesAndZeroGradClears) {
  auto w = param("w", {3}, 12);
  Tensor l1 = sum(w->tensor() * 2.0);
  l1.backward();
  Tensor l2 = sum(w->tensor() * 3.0);
  l2.backward();
  Array g = w->grad().to_host();
  for (int i = 0; i < 3; ++i)
    EXPECT_DOUBLE_EQ(g.get(i), 5.0);
}

} // namespace
} // namespace kiln
