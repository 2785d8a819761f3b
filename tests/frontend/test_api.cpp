// The LibTorch-like API (issue 13, item 3): module holders called as
// `fc1(x)`, forward with several inputs, compile_train_step with named
// inputs, register_buffer, named_modules, zero_grad(set_to_none), parameter
// groups, clip_grad_norm_ and NoGradGuard. Numerics are checked in f64
// against hand computations.
#include "frontend/checkpoint.h"
#include "frontend/compile.h"
#include "frontend/layers.h"
#include "frontend/loss.h"
#include "frontend/optim.h"
#include "ir/error.h"
#include "ir/printer.h"
#include "passes/pass_manager.h"
#include "runtime/safetensors.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

namespace kiln {
namespace {

Array f64_array(Shape shape, double phase) {
  Array a(Type{DType::f64, std::move(shape)});
  for (int64_t i = 0; i < a.numel(); ++i)
    a.set(i, std::sin(0.7 * static_cast<double>(i) + phase));
  return a;
}

// Linear's weight element for output o, input k: [out, in] as in torch
// (read by shape, so this holds while the layout changes; issue 13 item 4).
double weight_at(const Array &w, int64_t o, int64_t k, int64_t in) {
  const Shape &s = w.type().shape;
  return s[1] == in ? w.get(o * in + k) : w.get(k * s[1] + o);
}

nn::LinearOptions f64_options(Generator *gen = nullptr) {
  nn::LinearOptions o;
  o.dtype = DType::f64;
  o.generator = gen;
  return o;
}

// ---- holders and multi-input forward --------------------------------------

struct GatedImpl : nn::Module {
  nn::Linear fc{nullptr};
  explicit GatedImpl(Generator *gen) {
    fc = register_module("fc", nn::Linear(4, 3, f64_options(gen)));
  }
  // Two inputs: the features and a mask multiplied into them. (The using
  // keeps clang's -Woverloaded-virtual quiet; see frontend/module.h.)
  using nn::Module::forward;
  Tensor forward(const Tensor &x, const Tensor &mask) { return fc(x * mask); }
};
KILN_MODULE(Gated);

TEST(Api, HolderIsCalledLikeAFunction) {
  nn::Linear fc(4, 3, f64_options());
  Array x = f64_array({2, 4}, 0.1);
  Array y = fc(Tensor::from(x)).to_host();
  // y = x @ W^T + b, by hand.
  const Array &w = fc->weight->value(), &b = fc->bias->value();
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t o = 0; o < 3; ++o) {
      double ref = b.get(o);
      for (int64_t k = 0; k < 4; ++k)
        ref += x.get(i * 4 + k) * weight_at(w, o, k, 4);
      EXPECT_NEAR(y.get(i * 3 + o), ref, 1e-12);
    }
  EXPECT_EQ(fc->type_name(), "Linear");
  // Copies share the module.
  nn::Linear other = fc;
  EXPECT_EQ(other.get(), fc.get());
}

TEST(Api, EmptyHolderThrows) {
  nn::Linear empty{nullptr};
  EXPECT_TRUE(empty.is_empty());
  Tensor x = Tensor::from(f64_array({1, 4}, 0));
  EXPECT_THROW(empty(x), Error);
  Trace::discard_active();
}

TEST(Api, MultiInputForward) {
  Generator gen(3);
  Gated net(&gen);
  EXPECT_EQ(net->type_name(), "Gated"); // "Impl" is dropped
  Array x = f64_array({2, 4}, 0.3), mask = f64_array({2, 4}, 1.1);
  Array y = net(Tensor::from(x), Tensor::from(mask)).to_host();
  const Array &w = net->fc->weight->value(), &b = net->fc->bias->value();
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t o = 0; o < 3; ++o) {
      double ref = b.get(o);
      for (int64_t k = 0; k < 4; ++k)
        ref += x.get(i * 4 + k) * mask.get(i * 4 + k) * weight_at(w, o, k, 4);
      EXPECT_NEAR(y.get(i * 3 + o), ref, 1e-12);
    }
  // Through a Module& only the one-input forward exists.
  nn::Module &m = *net;
  try {
    m(Tensor::from(x));
    FAIL() << "expected an error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("has no forward taking one tensor"),
              std::string::npos)
        << e.what();
  }
  Trace::discard_active();
  // An undefined input is named by its position.
  try {
    net(Tensor::from(x), Tensor());
    FAIL() << "expected an error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("undefined tensor (argument 2)"),
              std::string::npos)
        << e.what();
  }
  Trace::discard_active();
}

TEST(Api, SequentialOfHolders) {
  nn::Sequential seq(nn::Linear(4, 3), nn::ReLU(), nn::Linear(3, 2));
  EXPECT_EQ(seq->size(), 3u);
  Tensor y = seq(Tensor::from(Array(Type{DType::f32, {5, 4}})));
  EXPECT_EQ(y.shape(), (Shape{5, 2}));
  Trace::discard_active();
}

// ---- named_modules --------------------------------------------------------

TEST(Api, NamedModulesPaths) {
  struct NetImpl : nn::Module {
    nn::Linear fc1{nullptr};
    nn::Sequential block{nullptr};
    NetImpl() {
      fc1 = register_module("fc1", nn::Linear(4, 4));
      block = register_module("block",
                              nn::Sequential(nn::Linear(4, 2), nn::Tanh()));
    }
    Tensor forward(const Tensor &x) override { return block(fc1(x)); }
  };
  NetImpl net;
  std::vector<std::string> names, types;
  for (auto &[name, m] : net.named_modules()) {
    names.push_back(name);
    types.push_back(m->type_name());
  }
  EXPECT_EQ(names, (std::vector<std::string>{"", "fc1", "block", "block.0",
                                             "block.1"}));
  EXPECT_EQ(types, (std::vector<std::string>{"Net", "Linear", "Sequential",
                                             "Linear", "Tanh"}));
  // Relative to a sub-module, as torch names them.
  std::vector<std::string> sub;
  for (auto &[name, m] : net.block->named_modules())
    sub.push_back(name);
  EXPECT_EQ(sub, (std::vector<std::string>{"", "0", "1"}));
  EXPECT_EQ(net.modules().size(), 5u);
}

// ---- compile_train_step with named inputs ---------------------------------

TEST(Api, CompileTrainStepWithThreeNamedInputs) {
  Generator g1(5), g2(5);
  Gated a(&g1), b(&g2);
  optim::SGD opt_a(a->parameters(), {.lr = 0.1});
  optim::SGD opt_b(b->parameters(), {.lr = 0.1});
  const Type xt{DType::f64, {2, 4}}, yt{DType::f64, {2, 3}};
  auto step = compile_train_step(
      a, opt_a, {{"x", xt}, {"mask", xt}, {"target", yt}},
      [](Gated &m, const StepInputs &in) {
        return nn::mse_loss(m(in["x"], in["mask"]), in["target"]);
      });
  EXPECT_EQ(step.inputs().size(), 3u);
  for (int k = 0; k < 3; ++k) {
    Array x = f64_array({2, 4}, k), mask = f64_array({2, 4}, 2.0 + k),
          t = f64_array({2, 3}, 5.0 + k);
    double la = k % 2 ? step({x, mask, t})
                      : step({{"target", t}, {"x", x}, {"mask", mask}});
    // The familiar loop on an identical model.
    opt_b.zero_grad();
    Tensor loss =
        nn::mse_loss(b(Tensor::from(x, "x"), Tensor::from(mask, "mask")),
                     Tensor::from(t, "target"));
    loss.backward();
    opt_b.step();
    double lb = loss.item();
    EXPECT_NEAR(la, lb, 1e-12) << "step " << k;
  }
  auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i)
    for (int64_t j = 0; j < pa[i]->value().numel(); ++j)
      EXPECT_NEAR(pa[i]->value().get(j), pb[i]->value().get(j), 1e-12);
  // Wrong count, wrong type, unknown and missing names.
  Array x = f64_array({2, 4}, 0), t = f64_array({2, 3}, 0);
  EXPECT_THROW(step({x, x}), Error);
  EXPECT_THROW(step({x, x, x}), Error);
  EXPECT_THROW(step({{"x", x}, {"mask", x}}), Error);
  EXPECT_THROW(step({{"x", x}, {"mask", x}, {"target", t}, {"extra", t}}),
               Error);
  // Unknown names in the loss function, duplicates, reserved names.
  EXPECT_THROW(compile_train_step(a, opt_a, {{"x", xt}},
                                  [](Gated &, const StepInputs &in) {
                                    return sum(in["nope"]);
                                  }),
               Error);
  EXPECT_THROW(compile_train_step(
                   a, opt_a, {{"x", xt}, {"x", xt}},
                   [](Gated &, const StepInputs &in) { return sum(in[0]); }),
               Error);
  EXPECT_THROW(compile_train_step(
                   a, opt_a, {{"lr", xt}},
                   [](Gated &, const StepInputs &in) { return sum(in[0]); }),
               Error);
}

// ---- register_buffer ------------------------------------------------------

// Keeps a running mean of its input's columns (as batch norm does) and
// counts its calls; returns x minus the running mean.
struct CenterImpl : nn::Module {
  std::shared_ptr<Buffer> running_mean, calls;
  nn::Linear fc{nullptr};
  CenterImpl() {
    fc = register_module("fc", nn::Linear(3, 2, f64_options()));
    running_mean =
        register_buffer("running_mean", Array(Type{DType::f64, {3}}));
    calls = register_buffer("calls", Array(Type{DType::f64, {}}));
  }
  Tensor forward(const Tensor &x) override {
    Tensor rm = running_mean->tensor() * 0.9 + mean(x, {0}) * 0.1;
    running_mean->assign(rm);
    calls->assign(calls->tensor() + 1.0);
    return fc(x - rm);
  }
};
KILN_MODULE(Center);

TEST(Api, RegisterBufferIsStateUpdatedInPlace) {
  Center c;
  auto named = c->named_buffers();
  ASSERT_EQ(named.size(), 2u);
  EXPECT_EQ(named[0].first, "running_mean");
  EXPECT_EQ(named[1].first, "calls");
  // Not trained.
  for (auto &p : c->parameters())
    EXPECT_EQ(p->name().find("running"), std::string::npos);
  EXPECT_THROW(c->register_buffer("calls", Array(Type{DType::f64, {}})), Error);
  // Inside a parent, the buffer gets the dotted path.
  struct Outer : nn::Module {
    Center inner;
    Outer() { register_module("inner", inner); }
    Tensor forward(const Tensor &x) override { return inner(x); }
  } outer;
  EXPECT_EQ(outer.named_buffers()[0].first, "inner.running_mean");

  optim::SGD opt(outer.parameters(), {.lr = 0.05});
  const Type xt{DType::f64, {4, 3}}, yt{DType::f64, {4, 2}};
  auto step = compile_train_step(outer, nn::mse_loss, opt, xt, yt);
  // The step graph has the buffers as state inputs updated in place.
  const Graph &g = step.graph();
  int rm = step.program().input_index("inner.running_mean");
  ASSERT_GE(rm, 0);
  EXPECT_EQ(g.inputs()[rm].kind, InputKind::state);
  bool aliased = false;
  for (const GraphOutput &o : g.outputs)
    aliased = aliased || o.alias == rm;
  EXPECT_TRUE(aliased);

  std::vector<double> ref(3, 0.0);
  for (int k = 0; k < 3; ++k) {
    Array x = f64_array({4, 3}, k), y = f64_array({4, 2}, 10.0 + k);
    step(x, y);
    for (int64_t j = 0; j < 3; ++j) {
      double m = 0;
      for (int64_t i = 0; i < 4; ++i)
        m += x.get(i * 3 + j) / 4;
      ref[j] = ref[j] * 0.9 + m * 0.1;
    }
  }
  const Array &got = outer.inner->running_mean->value();
  for (int64_t j = 0; j < 3; ++j)
    EXPECT_NEAR(got.get(j), ref[j], 1e-12);
  EXPECT_EQ(outer.inner->calls->value().get(0), 3.0);

  // Saved with the parameters (the checkpoint is the state dict).
  auto path =
      std::filesystem::temp_directory_path() / "kiln_test_api_buffer.st";
  save_checkpoint(path.string(), outer, nullptr, {});
  SafeTensorsFile f = load_safetensors(path.string());
  EXPECT_TRUE(f.tensors.count("model.inner.running_mean"));
  EXPECT_TRUE(f.tensors.count("model.inner.calls"));
  EXPECT_TRUE(f.tensors.count("model.inner.fc.weight"));
  std::filesystem::remove(path);
}

// ---- zero_grad ------------------------------------------------------------

struct TwoLayerImpl : nn::Module {
  nn::Linear fc1{nullptr}, fc2{nullptr};
  explicit TwoLayerImpl(Generator *gen) {
    fc1 = register_module("fc1", nn::Linear(3, 2, f64_options(gen)));
    fc2 = register_module("fc2", nn::Linear(3, 2, f64_options(gen)));
  }
  // fc2 is unused: it gets no gradient from backward.
  Tensor forward(const Tensor &x) override { return fc1(x); }
};
KILN_MODULE(TwoLayer);

TEST(Api, ZeroGradSetToNone) {
  for (bool to_none : {true, false}) {
    SCOPED_TRACE(to_none ? "set_to_none" : "zeros");
    Generator gen(7);
    TwoLayer net(&gen);
    const double lr = 0.5, wd = 0.1;
    optim::SGD opt(net->parameters(), {.lr = lr, .weight_decay = wd});
    Array w2 = net->fc2->weight->value().clone();
    opt.zero_grad(to_none);
    Tensor loss = nn::mse_loss(net(Tensor::from(f64_array({2, 3}, 0))),
                               Tensor::from(f64_array({2, 2}, 1)));
    loss.backward();
    EXPECT_TRUE(net->fc1->weight->grad().defined());
    // torch: a zeroed gradient exists (and is zero); a None one does not.
    EXPECT_EQ(net->fc2->weight->grad().defined(), !to_none);
    opt.step();
    loss.item();
    // A zero gradient is still stepped: weight decay moves fc2.
    const Array &now = net->fc2->weight->value();
    for (int64_t i = 0; i < now.numel(); ++i)
      EXPECT_NEAR(now.get(i), to_none ? w2.get(i) : w2.get(i) * (1 - lr * wd),
                  1e-15);
  }
  // Dropping gradients recorded in the active trace.
  Generator gen(7);
  TwoLayer net(&gen);
  Tensor loss = sum(net(Tensor::from(f64_array({2, 3}, 0))));
  loss.backward();
  ASSERT_TRUE(net->fc1->weight->grad().defined());
  net->zero_grad();
  EXPECT_FALSE(net->fc1->weight->grad().defined());
  Trace::discard_active();
}

// ---- parameter groups -----------------------------------------------------

TEST(Api, ParamGroupWithoutWeightDecayLeavesBiasesUndecayed) {
  Generator g1(9), g2(9);
  nn::Linear a(3, 2, f64_options(&g1)), b(3, 2, f64_options(&g2));
  const double lr = 0.3, wd = 0.2;
  // a: decay on the weight only; b: no decay at all.
  optim::SGD opt_a({{{a->weight}}, {{a->bias}, {.weight_decay = 0}}},
                   {.lr = lr, .weight_decay = wd});
  optim::SGD opt_b(b->parameters(), {.lr = lr});
  ASSERT_EQ(opt_a.num_groups(), 2u);
  EXPECT_EQ(opt_a.group_weight_decay(0), wd);
  EXPECT_EQ(opt_a.group_weight_decay(1), 0);
  Array w0 = a->weight->value().clone();
  Array x = f64_array({4, 3}, 0.5), y = f64_array({4, 2}, 2.5);
  for (auto [m, opt] : {std::pair<nn::Linear *, optim::Optimizer *>{&a, &opt_a},
                        {&b, &opt_b}}) {
    opt->zero_grad();
    Tensor loss =
        nn::mse_loss((*m)(Tensor::from(x, "x")), Tensor::from(y, "y"));
    loss.backward();
    opt->step();
    loss.item();
  }
  // w_a = w0 - lr (g + wd w0) = w_b - lr wd w0; the biases are equal.
  for (int64_t i = 0; i < w0.numel(); ++i)
    EXPECT_NEAR(a->weight->value().get(i),
                b->weight->value().get(i) - lr * wd * w0.get(i), 1e-14);
  for (int64_t i = 0; i < 2; ++i)
    EXPECT_EQ(a->bias->value().get(i), b->bias->value().get(i));
}

TEST(Api, ParamGroupLearningRates) {
  Generator gen(4);
  nn::Linear fc(3, 2, f64_options(&gen));
  optim::SGD opt({{{fc->weight}}, {{fc->bias}, {.lr = 0}}}, {.lr = 0.1});
  Array b0 = fc->bias->value().clone();
  const Type xt{DType::f64, {4, 3}}, yt{DType::f64, {4, 2}};
  auto step = compile_train_step(*fc, nn::mse_loss, opt, xt, yt);
  // One lr input per group.
  EXPECT_GE(step.program().input_index("lr"), 0);
  EXPECT_GE(step.program().input_index("lr.1"), 0);
  step(f64_array({4, 3}, 0), f64_array({4, 2}, 1));
  for (int64_t i = 0; i < 2; ++i)
    EXPECT_EQ(fc->bias->value().get(i), b0.get(i));
  // set_lr keeps each group's ratio; a group's own lr can be set.
  optim::SGD scaled({{{fc->weight}}, {{fc->bias}, {.lr = 0.5}}}, {.lr = 0.1});
  scaled.set_lr(0.2);
  EXPECT_NEAR(scaled.group_lr(0), 0.2, 1e-15);
  EXPECT_NEAR(scaled.group_lr(1), 1.0, 1e-15);
  scaled.set_group_lr(1, 0.7);
  EXPECT_EQ(scaled.group_lr(1), 0.7);
  // A parameter in two groups is an error.
  EXPECT_THROW(optim::SGD({{{fc->weight}}, {{fc->weight}}}, {.lr = 0.1}),
               Error);
}

// ---- clip_grad_norm_ ------------------------------------------------------

TEST(Api, ClipGradNormMatchesF64Reference) {
  for (double norm_type : {2.0, std::numeric_limits<double>::infinity()}) {
    for (double max_norm : {0.05, 100.0}) {
      SCOPED_TRACE(::testing::Message()
                   << "norm " << norm_type << " max " << max_norm);
      Generator gen(13);
      TwoLayer net(&gen);
      auto params = net->fc1->parameters();
      Array x = f64_array({5, 3}, 0.2), y = f64_array({5, 2}, 3.0);
      // The unclipped gradients.
      Tensor loss = nn::mse_loss(net(Tensor::from(x)), Tensor::from(y));
      loss.backward();
      std::vector<Array> grads =
          realize({params[0]->grad(), params[1]->grad()});
      double total = 0;
      for (const Array &g : grads)
        for (int64_t i = 0; i < g.numel(); ++i)
          total = std::isinf(norm_type) ? std::max(total, std::abs(g.get(i)))
                                        : total + g.get(i) * g.get(i);
      if (!std::isinf(norm_type))
        total = std::sqrt(total);
      double coef = std::min(max_norm / (total + 1e-6), 1.0);
      std::vector<Array> before = {params[0]->value().clone(),
                                   params[1]->value().clone()};

      const double lr = 0.5;
      optim::SGD opt(params, {.lr = lr});
      loss = nn::mse_loss(net(Tensor::from(x)), Tensor::from(y));
      loss.backward();
      Tensor norm = nn::utils::clip_grad_norm_(params, max_norm, norm_type);
      opt.step();
      std::vector<Array> out = realize({loss, norm});
      EXPECT_NEAR(out[1].get(0), total, 1e-12 * total);
      for (size_t p = 0; p < params.size(); ++p)
        for (int64_t i = 0; i < before[p].numel(); ++i)
          EXPECT_NEAR(params[p]->value().get(i),
                      before[p].get(i) - lr * coef * grads[p].get(i), 1e-13);
    }
  }
  // Without gradients there is nothing to clip.
  Generator gen(1);
  TwoLayer net(&gen);
  EXPECT_THROW(nn::utils::clip_grad_norm_(net->parameters(), 1.0), Error);
}

TEST(Api, CompiledStepClipsLikeTheLoop) {
  Generator g1(21), g2(21);
  nn::Linear a(3, 2, f64_options(&g1)), b(3, 2, f64_options(&g2));
  optim::SGD opt_a(a->parameters(), {.lr = 0.3, .momentum = 0.9});
  optim::SGD opt_b(b->parameters(), {.lr = 0.3, .momentum = 0.9});
  const Type xt{DType::f64, {4, 3}}, yt{DType::f64, {4, 2}};
  auto step = compile_train_step(a, opt_a, {{"x", xt}, {"y", yt}},
                                 [](nn::Linear &m, const StepInputs &in) {
                                   return nn::mse_loss(m(in["x"]), in["y"]);
                                 },
                                 {.max_grad_norm = 0.1});
  for (int k = 0; k < 3; ++k) {
    Array x = f64_array({4, 3}, k), y = f64_array({4, 2}, 4.0 * k);
    step({x, y});
    opt_b.zero_grad();
    Tensor loss = nn::mse_loss(b(Tensor::from(x, "x")), Tensor::from(y, "y"));
    loss.backward();
    nn::utils::clip_grad_norm_(b->parameters(), 0.1);
    opt_b.step();
    loss.item();
  }
  for (int64_t i = 0; i < 6; ++i)
    EXPECT_NEAR(a->weight->value().get(i), b->weight->value().get(i), 1e-13);
  // The clip factor min(max_norm / (norm + eps), 1) is applied inside the
  // fused multi-tensor optimizer update, not as separate kernels.
  auto g = step.graph().clone();
  PassManager pm{PassOptions{}};
  pm.add_pipeline(CompileOptions{}.pipeline);
  pm.run(*g);
  std::string ir = print(*g);
  size_t update = ir.find("kind = \"multi_tensor\"");
  ASSERT_NE(update, std::string::npos) << ir;
  EXPECT_NE(ir.find("min(", update), std::string::npos) << ir;
  EXPECT_EQ(ir.rfind("min(", update), std::string::npos) << ir;
}

// ---- NoGradGuard ----------------------------------------------------------

TEST(Api, NoGradGuard) {
  Generator gen(2);
  nn::Linear fc(3, 2, f64_options(&gen));
  Array x = f64_array({2, 3}, 0);
  EXPECT_TRUE(grad_enabled());
  // A trace started before the guard: backward() inside the guard is still
  // an error (the guard, not the trace, says so).
  Tensor before = sum(fc(Tensor::from(x)));
  {
    NoGradGuard no_grad;
    try {
      before.backward();
      FAIL() << "expected an error";
    } catch (const Error &e) {
      EXPECT_NE(std::string(e.what()).find("inside a NoGradGuard"),
                std::string::npos)
          << e.what();
    }
  }
  Trace::discard_active();
  Tensor kept;
  {
    NoGradGuard no_grad;
    EXPECT_FALSE(grad_enabled());
    // Evaluation works as before.
    double s = sum(fc(Tensor::from(x))).item();
    EXPECT_TRUE(std::isfinite(s));
    // backward() inside is an error.
    Tensor loss = sum(fc(Tensor::from(x)));
    try {
      loss.backward();
      FAIL() << "expected an error";
    } catch (const Error &e) {
      EXPECT_NE(std::string(e.what()).find("NoGradGuard"), std::string::npos)
          << e.what();
    }
    Trace::discard_active();
    { NoGradGuard nested; }
    EXPECT_FALSE(grad_enabled()); // nesting restores the outer state
    kept = sum(fc(Tensor::from(x)));
  }
  EXPECT_TRUE(grad_enabled());
  // The trace started under the guard records no gradients afterwards.
  try {
    kept.backward();
    FAIL() << "expected an error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("recorded under a NoGradGuard"),
              std::string::npos)
        << e.what();
  }
  Trace::discard_active();
  // Training after the guard works.
  Tensor loss = sum(fc(Tensor::from(x)));
  loss.backward();
  EXPECT_TRUE(fc->weight->grad().defined());
  Trace::discard_active();
}

// ---- the README's "Writing a model" example, as written there -----------

struct Net : kiln::nn::Module {
  kiln::nn::Linear fc1{nullptr}, fc2{nullptr};
  Net() {
    fc1 = register_module("fc1", kiln::nn::Linear(784, 128));
    fc2 = register_module("fc2", kiln::nn::Linear(128, 10));
  }
  kiln::Tensor forward(const kiln::Tensor &x) override {
    return fc2(kiln::relu(fc1(x)));
  }
};

TEST(Api, ReadmeExample) {
  Net net;
  kiln::optim::SGD opt(net.parameters(), {.lr = 0.05, .momentum = 0.9});
  Array x(Type{DType::f32, {64, 784}}), y(Type{DType::i32, {64}});
  for (int64_t i = 0; i < x.numel(); ++i)
    x.set(i, std::sin(0.01 * static_cast<double>(i)));
  for (int64_t i = 0; i < 64; ++i)
    y.set(i, static_cast<double>(i % 10));

  // The familiar loop: records the step lazily, compiles it once, replays it.
  opt.zero_grad();
  auto loss = kiln::nn::cross_entropy(net(kiln::Tensor::from(x, "x")),
                                      kiln::Tensor::from(y, "y"));
  loss.backward();
  opt.step();
  float l = loss.item();

  // Or compile ahead: the same step graph, as a callable.
  auto step = kiln::compile_train_step(net, kiln::nn::cross_entropy, opt,
                                       {kiln::DType::f32, {64, 784}},
                                       {kiln::DType::i32, {64}});
  double l2 = step(x, y);
  EXPECT_TRUE(std::isfinite(l));
  EXPECT_LT(l2, l); // the second step sees the first one's update
  EXPECT_EQ(net.named_parameters()[0].first, "fc1.weight");
}

} // namespace
} // namespace kiln
