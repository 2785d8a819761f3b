// nn::LayerNorm, nn::BatchNorm1d/2d, nn::Embedding and the functional forms
// (frontend/norm.h), composed from existing ops (issue 12):
// - f64 checks that need no torch: normalised statistics, running statistics
//   after a step against the hand formula (unbiased running_var), eval()
//   normalising with the running statistics, finite-difference gradients on
//   the reference interpreter, train()/eval() compiling different graphs
//   that both run in the familiar loop and in compile_train_step (buffers
//   updated in place), the CPU backend matching the interpreter, and errors
//   naming the module;
// - against PyTorch 1.13 (a python3 with torch, testing::python_with; the
//   tests skip, saying so, without one): outputs and running statistics of
//   the same layers on the same inputs, and a PyTorch state_dict with
//   BatchNorm (num_batches_tracked as I64), LayerNorm and Embedding loading
//   by name.
#include "frontend/checkpoint.h"
#include "frontend/compile.h"
#include "frontend/device.h"
#include "frontend/layers.h"
#include "frontend/loss.h"
#include "frontend/optim.h"
#include "ir/error.h"
#include "ir/printer.h"
#include "tests/support/gradcheck.h"

#include "../support/files.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

namespace kiln {
namespace {

// The same deterministic values as the python scripts below make:
// sin(0.7 i + phase) * scale + shift.
Array wave(Shape shape, double phase, double scale = 1, double shift = 0,
           DType dtype = DType::f64) {
  Array a(Type{dtype, std::move(shape)});
  for (int64_t i = 0; i < a.numel(); ++i)
    a.set(i, std::sin(0.7 * static_cast<double>(i) + phase) * scale + shift);
  return a;
}

// Runs the body on `d` and restores the default choice after.
class OnDevice {
public:
  explicit OnDevice(Device d) { set_device(d); }
  ~OnDevice() { reset_device(); }
};

nn::LayerNormOptions ln_f64(bool affine = true) {
  nn::LayerNormOptions o;
  o.elementwise_affine = affine;
  o.dtype = DType::f64;
  return o;
}

nn::EmbeddingOptions emb_f64() {
  nn::EmbeddingOptions o;
  o.dtype = DType::f64;
  return o;
}

nn::LinearOptions linear_opts(DType dtype, Generator *g) {
  nn::LinearOptions o;
  o.dtype = dtype;
  o.generator = g;
  return o;
}

nn::BatchNormOptions f64_bn() {
  nn::BatchNormOptions o;
  o.dtype = DType::f64;
  return o;
}

// Per-channel mean and biased variance of x [N, C, *] in f64.
void channel_stats(const Array &x, std::vector<double> &m,
                   std::vector<double> &v) {
  const Shape &s = x.type().shape;
  int64_t n = s[0], c = s[1], inner = x.numel() / (n * c);
  m.assign(c, 0.0);
  v.assign(c, 0.0);
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < inner; ++k)
        m[ch] += x.get((i * c + ch) * inner + k);
    m[ch] /= static_cast<double>(n * inner);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < inner; ++k) {
        double d = x.get((i * c + ch) * inner + k) - m[ch];
        v[ch] += d * d;
      }
    v[ch] /= static_cast<double>(n * inner);
  }
}

// ---- numerics without torch ------------------------------------------------

TEST(NormLayers, LayerNormMatchesHandFormula) {
  Trace::discard_active();
  nn::LayerNorm ln(std::vector<int64_t>{3, 4}, ln_f64());
  EXPECT_EQ(ln->named_parameters()[0].first, "weight");
  EXPECT_EQ(ln->named_parameters()[1].first, "bias");
  ln->weight->value() = wave({3, 4}, 0.3, 0.5, 1);
  ln->bias->value() = wave({3, 4}, 1.1, 0.2);
  Array x = wave({2, 3, 4}, 0.0, 3, 1);
  Array y = ln(Tensor::from(x)).to_host();
  const Array &w = ln->weight->value(), &b = ln->bias->value();
  for (int64_t r = 0; r < 2; ++r) {
    double m = 0, v = 0;
    for (int64_t k = 0; k < 12; ++k)
      m += x.get(r * 12 + k) / 12;
    for (int64_t k = 0; k < 12; ++k)
      v += (x.get(r * 12 + k) - m) * (x.get(r * 12 + k) - m) / 12;
    for (int64_t k = 0; k < 12; ++k) {
      double want =
          (x.get(r * 12 + k) - m) / std::sqrt(v + 1e-5) * w.get(k) + b.get(k);
      EXPECT_NEAR(y.get(r * 12 + k), want, 1e-12) << r << "," << k;
    }
  }
  // Without affine: mean 0, variance v / (v + eps) per row.
  nn::LayerNorm plain(std::vector<int64_t>{4}, ln_f64(false));
  EXPECT_TRUE(plain->parameters().empty());
  Array z = plain(Tensor::from(x)).to_host();
  for (int64_t r = 0; r < 6; ++r) {
    double m = 0, v = 0;
    for (int64_t k = 0; k < 4; ++k)
      m += z.get(r * 4 + k) / 4;
    for (int64_t k = 0; k < 4; ++k)
      v += (z.get(r * 4 + k) - m) * (z.get(r * 4 + k) - m) / 4;
    EXPECT_NEAR(m, 0, 1e-12);
    EXPECT_NEAR(v, 1, 1e-4);
  }
}

TEST(NormLayers, BatchNormTrainingUsesBatchStatsAndUpdatesRunningStats) {
  Trace::discard_active();
  for (Shape shape : {Shape{8, 3}, Shape{4, 3, 5}, Shape{4, 3, 2, 3}}) {
    SCOPED_TRACE(shape_str(shape));
    std::shared_ptr<nn::BatchNormImpl> bn;
    if (shape.size() == 4)
      bn = nn::BatchNorm2d(3, f64_bn()).ptr();
    else
      bn = nn::BatchNorm1d(3, f64_bn()).ptr();
    auto names = bn->named_buffers();
    ASSERT_EQ(names.size(), 3u);
    EXPECT_EQ(names[0].first, "running_mean");
    EXPECT_EQ(names[1].first, "running_var");
    EXPECT_EQ(names[2].first, "num_batches_tracked");
    EXPECT_EQ(bn->num_batches_tracked->type(), (Type{DType::i64, {}}));

    Array x = wave(shape, 0.2, 2, 0.5);
    std::vector<double> m, v;
    channel_stats(x, m, v);
    Array y = (*bn)(Tensor::from(x)).to_host();
    // Normalised: mean 0 and variance v / (v + eps) per channel.
    std::vector<double> ym, yv;
    channel_stats(y, ym, yv);
    int64_t n = x.numel() / 3;
    for (int ch = 0; ch < 3; ++ch) {
      EXPECT_NEAR(ym[ch], 0, 1e-12);
      EXPECT_NEAR(yv[ch], v[ch] / (v[ch] + 1e-5), 1e-12);
      // Running statistics: momentum 0.1 from (0, 1), unbiased variance.
      double unbiased = v[ch] * n / (n - 1);
      EXPECT_NEAR(bn->running_mean->value().get(ch), 0.1 * m[ch], 1e-14);
      EXPECT_NEAR(bn->running_var->value().get(ch), 0.9 + 0.1 * unbiased,
                  1e-14);
    }
    EXPECT_EQ(bn->num_batches_tracked->value().get(0), 1.0);
  }
}

TEST(NormLayers, EvalNormalisesWithRunningStats) {
  Trace::discard_active();
  nn::BatchNorm2d bn(2, f64_bn());
  bn->running_mean->value() = wave({2}, 0.4, 1);
  bn->running_var->value() = wave({2}, 0.9, 0.5, 2);
  bn->weight->value() = wave({2}, 1.3, 0.5, 1);
  bn->bias->value() = wave({2}, 2.1, 0.5);
  bn->eval();
  Array x = wave({3, 2, 2, 2}, 0.0, 2);
  Array y = bn(Tensor::from(x)).to_host();
  const Array &rm = bn->running_mean->value(), &rv = bn->running_var->value();
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t ch = (i / 4) % 2;
    double want = (x.get(i) - rm.get(ch)) / std::sqrt(rv.get(ch) + 1e-5) *
                      bn->weight->value().get(ch) +
                  bn->bias->value().get(ch);
    EXPECT_NEAR(y.get(i), want, 1e-12);
  }
  // Running statistics untouched in eval.
  EXPECT_EQ(bn->num_batches_tracked->value().get(0), 0.0);
  EXPECT_NEAR(bn->running_mean->value().get(0), wave({2}, 0.4, 1).get(0), 0);
}

TEST(NormLayers, MomentumNoneIsTheCumulativeAverage) {
  Trace::discard_active();
  nn::BatchNormOptions o = f64_bn();
  o.momentum = std::nullopt;
  nn::BatchNorm1d bn(2, o);
  std::vector<double> sum(2, 0.0);
  for (int k = 0; k < 3; ++k) {
    Array x = wave({5, 2}, k, 1, k);
    std::vector<double> m, v;
    channel_stats(x, m, v);
    for (int ch = 0; ch < 2; ++ch)
      sum[ch] += m[ch];
    bn(Tensor::from(x)).to_host();
  }
  for (int ch = 0; ch < 2; ++ch)
    EXPECT_NEAR(bn->running_mean->value().get(ch), sum[ch] / 3, 1e-14);
  EXPECT_EQ(bn->num_batches_tracked->value().get(0), 3.0);
}

TEST(NormLayers, WithoutRunningStatsBothModesUseTheBatch) {
  Trace::discard_active();
  nn::BatchNormOptions o = f64_bn();
  o.track_running_stats = false;
  o.affine = false;
  nn::BatchNorm1d bn(2, o);
  EXPECT_TRUE(bn->buffers().empty());
  EXPECT_TRUE(bn->parameters().empty());
  Array x = wave({6, 2}, 0.5, 3);
  Array a = bn(Tensor::from(x)).to_host();
  bn->eval();
  Array b = bn(Tensor::from(x)).to_host();
  for (int64_t i = 0; i < x.numel(); ++i)
    EXPECT_EQ(a.get(i), b.get(i));
}

TEST(NormLayers, EmbeddingPicksRowsAndScatterAddsGradients) {
  Trace::discard_active();
  manual_seed(7);
  nn::Embedding emb(5, 3, emb_f64());
  EXPECT_EQ(emb->named_parameters()[0].first, "weight");
  const Array w = emb->weight->value();
  // N(0, 1): plausible moments over a bigger table.
  nn::Embedding big(100, 100);
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < 10000; ++i) {
    double v = big->weight->value().get(i);
    s += v;
    s2 += v * v;
  }
  EXPECT_NEAR(s / 10000, 0, 0.05);
  EXPECT_NEAR(s2 / 10000, 1, 0.05);

  std::vector<int64_t> idx = {4, 0, 4, 2, 1, 4};
  Array ia = make_array({2, 3}, std::span<const int64_t>(idx));
  Tensor out = emb(Tensor::from(ia));
  ASSERT_EQ(out.shape(), (Shape{2, 3, 3}));
  Array dy = wave({2, 3, 3}, 0.3);
  Tensor loss = sum(out * Tensor::from(dy));
  loss.backward();
  std::vector<Array> r = realize({out, emb->weight->grad()});
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t d = 0; d < 3; ++d)
      EXPECT_EQ(r[0].get(i * 3 + d), w.get(idx[i] * 3 + d));
  // Row 4 appears three times: its gradient is the sum of three rows of dy.
  for (int64_t row = 0; row < 5; ++row)
    for (int64_t d = 0; d < 3; ++d) {
      double want = 0;
      for (int64_t i = 0; i < 6; ++i)
        if (idx[i] == row)
          want += dy.get(i * 3 + d);
      EXPECT_NEAR(r[1].get(row * 3 + d), want, 1e-15);
    }
}

TEST(NormLayers, ErrorsNameTheModule) {
  struct NetImpl : nn::Module {
    nn::BatchNorm2d bn{nullptr};
    nn::LayerNorm ln{nullptr};
    NetImpl() {
      bn = register_module("bn1", nn::BatchNorm2d(4));
      ln = register_module("ln", nn::LayerNorm(std::vector<int64_t>{8}));
    }
    Tensor forward(const Tensor &x) override {
      return x.rank() == 4 ? bn(x) : ln(x);
    }
  };
  NetImpl net;
  auto expect_error = [&](Shape shape, const std::string &want) {
    Trace::discard_active();
    try {
      net(Tensor::from(Array(Type{DType::f32, shape})));
      ADD_FAILURE() << "no error for " << shape_str(shape);
    } catch (const Error &e) {
      EXPECT_EQ(std::string(e.what()), want);
    }
  };
  expect_error({2, 3, 5, 5}, "bn1 (BatchNorm2d): expected 4 channels (axis "
                             "1), got input f32[2,3,5,5]");
  expect_error({2, 7}, "ln (LayerNorm): layer_norm: normalized_shape [8] does "
                       "not match the last axes of the input f32[2,7]");
  nn::BatchNorm1d bn1(3);
  Trace::discard_active();
  EXPECT_THROW(bn1(Tensor::from(Array(Type{DType::f32, {2, 3, 4, 5}}))), Error);
  // One value per channel cannot be normalised in training (torch says so
  // too).
  Trace::discard_active();
  EXPECT_THROW(bn1(Tensor::from(Array(Type{DType::f32, {1, 3}}))), Error);
  EXPECT_THROW(nn::BatchNorm2d(0), Error);
  EXPECT_THROW(nn::Embedding(0, 3), Error);
  Trace::discard_active();
}

// ---- gradients: f64 finite differences on the reference interpreter -------

std::shared_ptr<Parameter> param(std::string name, Array a) {
  return std::make_shared<Parameter>(std::move(name), std::move(a));
}

::testing::AssertionResult
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

// A scalar that weighs every output element differently.
Tensor weigh(const Tensor &out) {
  return sum(out * Tensor::from(wave(out.shape(), 2.5, 1, 0.3)));
}

TEST(NormLayers, GradientsMatchFiniteDifferencesOnTheInterpreter) {
  OnDevice on(Device::interpreter);
  {
    nn::LayerNorm ln(std::vector<int64_t>{2, 3}, ln_f64());
    ln->weight->value() = wave({2, 3}, 0.1, 0.5, 1);
    auto x = param("x", wave({3, 2, 3}, 0.7, 2));
    EXPECT_TRUE(fd_gradcheck([&] { return weigh(ln(x->tensor())); },
                             {ln->weight, ln->bias, x}));
  }
  for (Shape shape : {Shape{5, 2}, Shape{3, 2, 2, 3}}) {
    SCOPED_TRACE(shape_str(shape));
    std::shared_ptr<nn::BatchNormImpl> bn;
    if (shape.size() == 4)
      bn = nn::BatchNorm2d(2, f64_bn()).ptr();
    else
      bn = nn::BatchNorm1d(2, f64_bn()).ptr();
    bn->weight->value() = wave({2}, 0.1, 0.5, 1);
    bn->running_var->value() = wave({2}, 0.3, 0.5, 1.5);
    auto x = param("x", wave(shape, 0.4, 2, 0.3));
    // Training: the gradient through the batch statistics.
    EXPECT_TRUE(fd_gradcheck([&] { return weigh((*bn)(x->tensor())); },
                             {bn->weight, bn->bias, x}));
    bn->eval();
    EXPECT_TRUE(fd_gradcheck([&] { return weigh((*bn)(x->tensor())); },
                             {bn->weight, bn->bias, x}));
  }
}

TEST(NormLayers, TracedGraphsPassTheSharedGradcheck) {
  OnDevice on(Device::interpreter);
  nn::LayerNorm ln(std::vector<int64_t>{4}, ln_f64());
  nn::BatchNorm2d bn(2, f64_bn());
  bn->eval();
  for (int k = 0; k < 2; ++k) {
    TraceScope scope;
    Tensor x = Tensor::from(wave({2, 2, 3, 4}, 0.1), "x");
    Tensor loss = k == 0 ? weigh(ln(x)) : weigh(bn(x));
    Program p = scope.trace()->finish({loss.value()}, "g");
    std::vector<HostTensor> in = testing::gradcheck_inputs(p.graph(), 3);
    // Running variance must stay positive: the gradcheck's inputs are
    // uniform in [-1, 1], so shift them.
    for (size_t i = 0; i < p.graph().inputs().size(); ++i)
      if (p.graph().inputs()[i].value->name.ends_with("running_var"))
        for (double &v : in[i].data)
          v += 2;
    EXPECT_TRUE(testing::gradcheck(p.graph(), in)) << k;
  }
}

// ---- train() / eval() in the loop and in compile_train_step ---------------

struct NetImpl : nn::Module {
  nn::BatchNorm2d bn{nullptr};
  nn::Linear fc{nullptr};
  explicit NetImpl(DType dtype) {
    nn::BatchNormOptions o;
    o.dtype = dtype;
    bn = register_module("bn", nn::BatchNorm2d(2, o));
    Generator g(11);
    fc = register_module("fc", nn::Linear(8, 3, linear_opts(dtype, &g)));
  }
  Tensor forward(const Tensor &x) override { return fc(flatten(bn(x), 1)); }
};
KILN_MODULE(Net);

struct StepResult {
  std::vector<double> losses, running_mean, running_var, weight, eval_out;
  double batches = 0;
  std::string train_graph, eval_graph;
};

// Three compiled training steps, then an evaluation in eval() mode, on the
// current device.
StepResult run_steps(DType dtype) {
  Trace::discard_active();
  Net net(dtype);
  optim::SGD opt(net->parameters(), {.lr = 0.1});
  const Type xt{dtype, {3, 2, 2, 2}}, yt{dtype, {3, 3}};
  auto step = compile_train_step(*net, nn::mse_loss, opt, xt, yt);
  StepResult r;
  for (int k = 0; k < 3; ++k)
    r.losses.push_back(step(wave({3, 2, 2, 2}, k, 2, 1, dtype),
                            wave({3, 3}, 5 + k, 1, 0, dtype)));
  for (int ch = 0; ch < 2; ++ch) {
    r.running_mean.push_back(net->bn->running_mean->value().get(ch));
    r.running_var.push_back(net->bn->running_var->value().get(ch));
    r.weight.push_back(net->bn->weight->value().get(ch));
  }
  r.batches = net->bn->num_batches_tracked->value().get(0);
  r.train_graph = print(step.graph());
  net->eval();
  auto eval_step = compile_train_step(*net, nn::mse_loss, opt, xt, yt);
  r.eval_graph = print(eval_step.graph());
  Trace::discard_active();
  Array out = net(Tensor::from(wave({3, 2, 2, 2}, 9, 2, 1, dtype))).to_host();
  for (int64_t i = 0; i < out.numel(); ++i)
    r.eval_out.push_back(out.get(i));
  return r;
}

TEST(NormLayers, CompiledStepUpdatesRunningStatsInPlace) {
  OnDevice on(Device::interpreter);
  StepResult r = run_steps(DType::f64);
  // BatchNorm sees x itself: the running statistics follow the hand formula.
  std::vector<double> rm(2, 0.0), rv(2, 1.0);
  for (int k = 0; k < 3; ++k) {
    std::vector<double> m, v;
    channel_stats(wave({3, 2, 2, 2}, k, 2, 1), m, v);
    for (int ch = 0; ch < 2; ++ch) {
      rm[ch] = 0.9 * rm[ch] + 0.1 * m[ch];
      rv[ch] = 0.9 * rv[ch] + 0.1 * v[ch] * 12 / 11;
    }
  }
  for (int ch = 0; ch < 2; ++ch) {
    EXPECT_NEAR(r.running_mean[ch], rm[ch], 1e-14);
    EXPECT_NEAR(r.running_var[ch], rv[ch], 1e-14);
  }
  EXPECT_EQ(r.batches, 3.0);
  // Training and evaluation record different graphs; the training one
  // updates the running statistics, the evaluation one only reads them.
  EXPECT_NE(r.train_graph, r.eval_graph);
  EXPECT_NE(r.train_graph.find("bn.num_batches_tracked"), std::string::npos);
  EXPECT_EQ(r.eval_graph.find("bn.num_batches_tracked"), std::string::npos);
  EXPECT_NE(r.eval_graph.find("bn.running_var"), std::string::npos);
}

TEST(NormLayers, FamiliarLoopMatchesCompiledStep) {
  OnDevice on(Device::interpreter);
  StepResult compiled = run_steps(DType::f64);
  Trace::discard_active();
  Net net(DType::f64);
  optim::SGD opt(net->parameters(), {.lr = 0.1});
  for (int k = 0; k < 3; ++k) {
    opt.zero_grad();
    Tensor loss =
        nn::mse_loss(net(Tensor::from(wave({3, 2, 2, 2}, k, 2, 1), "x")),
                     Tensor::from(wave({3, 3}, 5 + k), "y"));
    loss.backward();
    opt.step();
    EXPECT_NEAR(loss.item(), compiled.losses[k], 1e-14);
  }
  for (int ch = 0; ch < 2; ++ch) {
    EXPECT_NEAR(net->bn->running_mean->value().get(ch),
                compiled.running_mean[ch], 1e-14);
    EXPECT_NEAR(net->bn->running_var->value().get(ch), compiled.running_var[ch],
                1e-14);
    EXPECT_NEAR(net->bn->weight->value().get(ch), compiled.weight[ch], 1e-14);
  }
  EXPECT_EQ(net->bn->num_batches_tracked->value().get(0), 3.0);
}

TEST(NormLayers, CpuBackendMatchesTheInterpreter) {
  if (!device_available(Device::cpu))
    GTEST_SKIP() << "no CPU backend in this build";
  for (DType dtype : {DType::f64, DType::f32}) {
    SCOPED_TRACE(dtype_name(dtype));
    StepResult ref, cpu;
    {
      OnDevice on(Device::interpreter);
      ref = run_steps(dtype);
    }
    {
      OnDevice on(Device::cpu);
      cpu = run_steps(dtype);
    }
    double tol = dtype == DType::f64 ? 1e-12 : 1e-5;
    for (int k = 0; k < 3; ++k)
      EXPECT_NEAR(cpu.losses[k], ref.losses[k], tol);
    for (int ch = 0; ch < 2; ++ch) {
      EXPECT_NEAR(cpu.running_mean[ch], ref.running_mean[ch], tol);
      EXPECT_NEAR(cpu.running_var[ch], ref.running_var[ch], tol);
      EXPECT_NEAR(cpu.weight[ch], ref.weight[ch], tol);
    }
    EXPECT_EQ(cpu.batches, 3.0);
    ASSERT_EQ(cpu.eval_out.size(), ref.eval_out.size());
    for (size_t i = 0; i < ref.eval_out.size(); ++i)
      EXPECT_NEAR(cpu.eval_out[i], ref.eval_out[i], tol);
  }
}

} // namespace
} // namespace kiln
