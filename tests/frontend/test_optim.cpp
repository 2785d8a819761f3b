// Optimizer trajectories against torch.optim's update rules written out in
// plain C++ loops (independent of kiln's IR): a Linear(3, 2) model in f64
// with an MSE loss, 5 steps, both through the familiar loop and through
// compile_train_step, with the learning rate changed between steps (it is a
// run-time input, so the step graph compiles once).
#include "frontend/compile.h"
#include "frontend/layers.h"
#include "frontend/loss.h"
#include "frontend/optim.h"
#include "ir/error.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>

namespace kiln {
namespace {

constexpr int N = 4, IN = 3, OUT = 2;
using Vec = std::vector<double>;

struct Problem {
  Array x{Type{DType::f64, {N, IN}}}, t{Type{DType::f64, {N, OUT}}};
  Problem() {
    Generator g(31);
    for (int i = 0; i < N * IN; ++i)
      x.set(i, g.uniform(-1, 1));
    for (int i = 0; i < N * OUT; ++i)
      t.set(i, g.uniform(-1, 1));
  }
};

// Loss and gradients of mean((x W^T + b - t)^2), W: [OUT, IN] (Linear).
double ref_grads(const Problem &p, const Vec &w, const Vec &b, Vec &gw,
                 Vec &gb) {
  gw.assign(IN * OUT, 0);
  gb.assign(OUT, 0);
  double loss = 0;
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < OUT; ++o) {
      double pred = b[o];
      for (int i = 0; i < IN; ++i)
        pred += p.x.get(n * IN + i) * w[o * IN + i]; // Linear: [out, in]
      double d = pred - p.t.get(n * OUT + o);
      loss += d * d / (N * OUT);
      double dp = 2 * d / (N * OUT);
      gb[o] += dp;
      for (int i = 0; i < IN; ++i)
        gw[o * IN + i] += p.x.get(n * IN + i) * dp;
    }
  return loss;
}

// torch.optim's rules for one parameter tensor, on flat vectors.
struct RefState {
  Vec buf, m, v;
};

struct RefOpt {
  virtual ~RefOpt() = default;
  virtual void begin() {}
  virtual void update(Vec &w, const Vec &g, RefState &s, double lr) = 0;
};

struct RefSGD : RefOpt {
  optim::SGDOptions o;
  bool first = true;
  explicit RefSGD(optim::SGDOptions o) : o(o) {}
  void begin() override {}
  void update(Vec &w, const Vec &g, RefState &s, double lr) override {
    bool fresh = s.buf.empty();
    if (fresh)
      s.buf.assign(w.size(), 0);
    for (size_t j = 0; j < w.size(); ++j) {
      double d = g[j];
      if (o.weight_decay != 0)
        d = d + o.weight_decay * w[j];
      if (o.momentum != 0) {
        if (fresh) // torch: buf = torch.clone(d_p).detach()
          s.buf[j] = d;
        else // buf.mul_(momentum).add_(d_p, alpha=1 - dampening)
          s.buf[j] = s.buf[j] * o.momentum + (1 - o.dampening) * d;
        d = o.nesterov ? d + o.momentum * s.buf[j] : s.buf[j];
      }
      w[j] = w[j] - lr * d;
    }
  }
};

struct RefAdam : RefOpt {
  optim::AdamOptions o;
  bool decoupled;
  int step = 0;
  RefAdam(optim::AdamOptions o, bool decoupled) : o(o), decoupled(decoupled) {}
  void begin() override { ++step; }
  void update(Vec &w, const Vec &grad, RefState &s, double lr) override {
    if (s.m.empty()) {
      s.m.assign(w.size(), 0);
      s.v.assign(w.size(), 0);
    }
    for (size_t j = 0; j < w.size(); ++j) {
      double g = grad[j];
      if (decoupled)
        w[j] *= 1 - lr * o.weight_decay;
      else if (o.weight_decay != 0)
        g = g + o.weight_decay * w[j];
      double wt = 1 - o.beta1; // exp_avg.lerp_(grad, 1 - beta1)
      s.m[j] =
          wt < 0.5 ? s.m[j] + wt * (g - s.m[j]) : g - (g - s.m[j]) * (1 - wt);
      s.v[j] = s.v[j] * o.beta2 + (1 - o.beta2) * g * g;
      double bc1 = 1 - std::pow(o.beta1, step);
      double bc2 = 1 - std::pow(o.beta2, step);
      double step_size = lr / bc1;
      double denom = std::sqrt(s.v[j]) / std::sqrt(bc2) + o.eps;
      w[j] += -step_size * s.m[j] / denom;
    }
  }
};

struct Case {
  std::string name;
  double lr;
  std::function<std::unique_ptr<optim::Optimizer>(
      std::vector<std::shared_ptr<Parameter>>)>
      make;
  std::function<std::unique_ptr<RefOpt>()> ref;
};

optim::SGDOptions sgd(double lr, double momentum = 0, double dampening = 0,
                      bool nesterov = false, double wd = 0) {
  optim::SGDOptions o;
  o.lr = lr;
  o.momentum = momentum;
  o.dampening = dampening;
  o.nesterov = nesterov;
  o.weight_decay = wd;
  return o;
}

optim::AdamOptions adam(double lr, double wd, double beta1 = 0.9) {
  optim::AdamOptions o;
  o.lr = lr;
  o.weight_decay = wd;
  o.beta1 = beta1;
  return o;
}

Case sgd_case(std::string name, optim::SGDOptions o) {
  return {name, o.lr,
          [o](auto ps) { return std::make_unique<optim::SGD>(ps, o); },
          [o] { return std::make_unique<RefSGD>(o); }};
}

Case adam_case(std::string name, optim::AdamOptions o, bool decoupled) {
  return {name, o.lr,
          [o, decoupled](auto ps) -> std::unique_ptr<optim::Optimizer> {
            if (decoupled)
              return std::make_unique<optim::AdamW>(ps, o);
            return std::make_unique<optim::Adam>(ps, o);
          },
          [o, decoupled] { return std::make_unique<RefAdam>(o, decoupled); }};
}

std::vector<Case> cases() {
  return {sgd_case("sgd", sgd(0.1)),
          sgd_case("momentum", sgd(0.1, 0.9)),
          sgd_case("dampening", sgd(0.1, 0.9, 0.3)),
          sgd_case("nesterov", sgd(0.1, 0.9, 0, true)),
          sgd_case("weight_decay", sgd(0.1, 0.8, 0, false, 0.05)),
          adam_case("adam", adam(0.05, 0), false),
          adam_case("adam_l2", adam(0.05, 0.1), false),
          adam_case("adam_beta1_small", adam(0.05, 0, 0.3), false),
          adam_case("adamw", adam(0.05, 0.1), true)};
}

void near_all(const Array &got, const Vec &want, const std::string &what) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size())) << what;
  for (size_t j = 0; j < want.size(); ++j)
    EXPECT_NEAR(got.get(j), want[j], 1e-14 + 1e-11 * std::fabs(want[j]))
        << what << "[" << j << "]";
}

class OptimTrajectory : public ::testing::TestWithParam<bool> {};

TEST_P(OptimTrajectory, MatchesTorchFormulasFor5Steps) {
  bool ahead = GetParam(); // compile_train_step, else the familiar loop
  Problem prob;
  for (const Case &c : cases()) {
    SCOPED_TRACE(c.name + (ahead ? " (compile ahead)" : " (familiar loop)"));
    nn::LinearOptions lo;
    lo.dtype = DType::f64;
    Generator gen(7);
    lo.generator = &gen;
    nn::Linear model(IN, OUT, lo);
    auto opt = c.make(model->parameters());
    auto ref = c.ref();
    Vec w = to_vector(model->weight->value()),
        b = to_vector(model->bias->value());
    RefState sw, sb;
    std::unique_ptr<TrainStep> step;
    if (ahead)
      step = std::make_unique<TrainStep>(compile_train_step(
          *model, nn::mse_loss, *opt, prob.x.type(), prob.t.type()));
    size_t cache_after_first = 0;
    for (int k = 0; k < 5; ++k) {
      double lr = c.lr * (1 - 0.15 * k); // a schedule, as data
      opt->set_lr(lr);
      Vec gw, gb;
      double want_loss = ref_grads(prob, w, b, gw, gb);
      ref->begin();
      ref->update(w, gw, sw, lr);
      ref->update(b, gb, sb, lr);
      double loss;
      if (ahead) {
        loss = (*step)(prob.x, prob.t);
      } else {
        opt->zero_grad();
        Tensor out = (*model)(Tensor::from(prob.x, "x"));
        Tensor l = nn::mse_loss(out, Tensor::from(prob.t, "y"));
        l.backward();
        opt->step();
        loss = l.item();
      }
      // Both return the f64 loss (TrainStep returns a double).
      EXPECT_NEAR(loss, want_loss, 1e-14) << k;
      near_all(model->weight->value(), w, "weight step " + std::to_string(k));
      near_all(model->bias->value(), b, "bias step " + std::to_string(k));
      if (!sw.buf.empty() && c.name != "sgd")
        near_all(*opt->state(*model->weight, "momentum_buffer"), sw.buf,
                 "momentum_buffer");
      if (!sw.m.empty()) {
        near_all(*opt->state(*model->weight, "exp_avg"), sw.m, "exp_avg");
        near_all(*opt->state(*model->weight, "exp_avg_sq"), sw.v, "exp_avg_sq");
      }
      if (k == 0)
        cache_after_first = compile_cache_size();
    }
    // A changing lr never recompiles.
    EXPECT_EQ(compile_cache_size(), cache_after_first);
  }
}

INSTANTIATE_TEST_SUITE_P(Both, OptimTrajectory, ::testing::Bool());

// L2 in the loss vs weight decay in the update. The gradient of
// lambda/2 ||w||^2 is lambda w, exactly the decay term SGD (with or without
// momentum) and Adam add to the gradient before anything else, so 10 steps
// land on the same parameters (measured: bitwise equal in f64 for all four;
// the bound leaves room for a rounding of lambda/2 * 2w vs lambda w). AdamW's
// decoupled decay shrinks the weights outside the adaptive step, so it
// differs (by 40x the update here).
struct L2Case {
  std::string name;
  std::function<std::unique_ptr<optim::Optimizer>(
      std::vector<std::shared_ptr<Parameter>>, double wd)>
      make;
  bool same; // the two trajectories agree
};

class L2VsWeightDecay : public ::testing::TestWithParam<int> {};

std::vector<L2Case> l2_cases() {
  return {
      {"sgd",
       [](auto ps, double wd) {
         return std::make_unique<optim::SGD>(ps, sgd(0.2, 0, 0, false, wd));
       },
       true},
      {"sgd_momentum",
       [](auto ps, double wd) {
         return std::make_unique<optim::SGD>(ps, sgd(0.2, 0.9, 0, false, wd));
       },
       true},
      {"sgd_nesterov",
       [](auto ps, double wd) {
         return std::make_unique<optim::SGD>(ps, sgd(0.2, 0.9, 0, true, wd));
       },
       true},
      {"adam",
       [](auto ps, double wd) {
         return std::make_unique<optim::Adam>(ps, adam(0.05, wd));
       },
       true},
  };
}

TEST_P(L2VsWeightDecay, SameTrajectoryExceptAdamW) {
  bool adamw = GetParam() == static_cast<int>(l2_cases().size());
  L2Case c =
      adamw
          ? L2Case{"adamw",
                   [](auto ps, double wd) -> std::unique_ptr<optim::Optimizer> {
                     if (wd == 0) // the L2 run: plain Adam
                       return std::make_unique<optim::Adam>(ps, adam(0.05, 0));
                     return std::make_unique<optim::AdamW>(ps, adam(0.05, wd));
                   },
                   false}
          : l2_cases()[GetParam()];
  SCOPED_TRACE(c.name);
  Problem prob;
  auto make = [] {
    nn::LinearOptions lo;
    lo.dtype = DType::f64;
    Generator gen(11);
    lo.generator = &gen;
    return nn::Sequential(nn::Linear(IN, 5, lo), nn::Tanh(),
                          nn::Linear(5, OUT, lo));
  };
  const double wd = 0.03;
  auto a = make(), b = make();
  auto opt_a = c.make(a->parameters(), wd);
  auto opt_b = c.make(b->parameters(), 0);
  auto step_a = compile_train_step(*a, nn::mse_loss, *opt_a, prob.x.type(),
                                   prob.t.type());
  auto params_b = b->parameters();
  auto step_b = compile_train_step(
      *b,
      [&](const Tensor &out, const Tensor &y) {
        return nn::mse_loss(out, y) + nn::l2_penalty(params_b, wd);
      },
      *opt_b, prob.x.type(), prob.t.type());
  for (int k = 0; k < 10; ++k) {
    step_a(prob.x, prob.t);
    step_b(prob.x, prob.t);
  }
  auto pa = a->parameters(), pb = b->parameters(), p0 = make()->parameters();
  bool moved = false;
  double worst = 0; // largest relative difference
  for (size_t i = 0; i < pa.size(); ++i)
    for (int64_t j = 0; j < pa[i]->value().numel(); ++j) {
      double x = pa[i]->value().get(j), y = pb[i]->value().get(j);
      worst = std::max(worst, std::fabs(x - y) / std::fabs(y));
      moved = moved || x != p0[i]->value().get(j);
    }
  EXPECT_TRUE(moved);
  std::printf("%s: largest relative difference L2 vs weight decay %.3g\n",
              c.name.c_str(), worst);
  if (c.same)
    EXPECT_LT(worst, 1e-12);
  else
    EXPECT_GT(worst, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Optimizers, L2VsWeightDecay, ::testing::Range(0, 5),
                         [](const auto &info) {
                           return info.param == 4 ? std::string("adamw")
                                                  : l2_cases()[info.param].name;
                         });

// Adam's first update in f32 against torch's formula in double: torch forms
// lr / (1 - beta1^t), sqrt(1 - beta2^t) and 1 - lr * wd on the host in
// double, and so must kiln (in f32 from beta2 rounded to f32 the update was
// 6.7e-6 smaller). The weights start small (|w| <= lr / 5), so the f32
// rounding of the new weight is ~1e-8 of the update; what remains are a few
// f32 roundings of the elementwise math (~2e-7 of the update at worst).
TEST(Optim, AdamFirstUpdateInF32MatchesTorchInDouble) {
  for (bool decoupled : {false, true}) {
    SCOPED_TRACE(decoupled ? "adamw" : "adam");
    Problem prob;
    Array x(Type{DType::f32, {N, IN}}), t(Type{DType::f32, {N, OUT}});
    for (int64_t i = 0; i < x.numel(); ++i) {
      x.set(i, prob.x.get(i)); // rounded to f32, and the reference uses it
      prob.x.set(i, x.get(i));
    }
    for (int64_t i = 0; i < t.numel(); ++i) {
      t.set(i, prob.t.get(i));
      prob.t.set(i, t.get(i));
    }
    nn::Linear model(IN, OUT);
    const double lr = 0.05;
    Generator gen(3);
    for (auto &p : model->parameters())
      for (int64_t i = 0; i < p->value().numel(); ++i)
        p->value().set(i, gen.uniform(-lr / 5, lr / 5));
    Vec w = to_vector(model->weight->value()),
        b = to_vector(model->bias->value());
    optim::AdamOptions o = adam(lr, decoupled ? 0.01 : 0);
    std::unique_ptr<optim::Optimizer> opt;
    if (decoupled)
      opt = std::make_unique<optim::AdamW>(model->parameters(), o);
    else
      opt = std::make_unique<optim::Adam>(model->parameters(), o);
    auto step =
        compile_train_step(*model, nn::mse_loss, *opt, x.type(), t.type());
    Vec gw, gb;
    ref_grads(prob, w, b, gw, gb);
    RefAdam ref(o, decoupled);
    RefState sw, sb;
    Vec w0 = w, b0 = b;
    ref.begin();
    ref.update(w, gw, sw, lr);
    ref.update(b, gb, sb, lr);
    step(x, t);
    double worst = 0; // relative to the update
    auto check = [&](const Array &got, const Vec &want, const Vec &before) {
      for (size_t j = 0; j < want.size(); ++j)
        worst = std::max(worst, std::fabs(got.get(j) - want[j]) /
                                    std::fabs(want[j] - before[j]));
    };
    check(model->weight->value(), w, w0);
    check(model->bias->value(), b, b0);
    EXPECT_LT(worst, 3e-7);
    std::printf("%s: worst relative error of the first update %.3g\n",
                decoupled ? "adamw" : "adam", worst);
  }
}

TEST(Optim, InvalidOptionsThrow) {
  nn::Linear lin(2, 2);
  EXPECT_THROW(optim::SGD(lin->parameters(), sgd(0.1, 0, 0, true)), Error);
  EXPECT_THROW(optim::SGD({}, sgd(0.1)), Error);
  EXPECT_THROW(optim::Adam(lin->parameters(), adam(0.1, 0, 1.0)), Error);
}

TEST(Optim, StepWithoutGradientsRecordsNothing) {
  nn::Linear lin(2, 2);
  Array before = lin->weight->value().clone();
  optim::SGD opt(lin->parameters(), sgd(0.1));
  opt.step(); // no trace, no grads
  Tensor y = (*lin)(Tensor::from(Array(Type{DType::f32, {1, 2}})));
  opt.step(); // a trace but no backward
  y.to_host();
  for (int64_t i = 0; i < before.numel(); ++i)
    EXPECT_EQ(lin->weight->value().get(i), before.get(i));
}

} // namespace
} // namespace kiln
