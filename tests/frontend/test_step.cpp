// The training step: the familiar loop and compile_train_step record the
// same graph, the step graph's input/output convention, the compile cache,
// the evaluation path, and a short real training run.
#include "frontend/compile.h"
#include "frontend/dataloader.h"
#include "frontend/fashion_mnist.h"
#include "frontend/loss.h"
#include "frontend/models.h"
#include "frontend/optim.h"
#include "ir/error.h"
#include "ir/printer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

namespace kiln {
namespace {

constexpr int64_t B = 8;
const Type kX{DType::f32, {B, 12}}, kY{DType::i32, {B}};

MlpOptions small_mlp(double dropout = 0.25) {
  MlpOptions o;
  o.in_features = 12;
  o.hidden = {10, 6};
  o.out_features = 4;
  o.dropout = dropout;
  return o;
}

optim::SGDOptions recipe() {
  optim::SGDOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  o.weight_decay = 5e-4;
  return o;
}

std::pair<Array, Array> batch(int k, int64_t n = B) {
  Array x(Type{DType::f32, {n, 12}}), y(Type{DType::i32, {n}});
  for (int64_t i = 0; i < x.numel(); ++i)
    x.set(i, std::sin(0.37 * static_cast<double>(i + 13 * k)));
  for (int64_t i = 0; i < n; ++i)
    y.set(i, static_cast<double>((i + k) % 4));
  return {x, y};
}

// One iteration as a PyTorch user writes it.
double familiar_step(nn::Module &model, optim::Optimizer &opt, const Array &x,
                     const Array &y,
                     std::shared_ptr<const Graph> *graph = nullptr) {
  opt.zero_grad();
  Tensor loss =
      nn::cross_entropy(model(Tensor::from(x, "x")), Tensor::from(y, "y"));
  loss.backward();
  opt.step();
  double l = loss.item();
  if (graph)
    *graph = loss.trace().finished_graph();
  return l;
}

TEST(Step, FamiliarLoopAndCompileAheadRecordTheSameIR) {
  manual_seed(1);
  auto a = make_mlp(small_mlp());
  manual_seed(1);
  auto b = make_mlp(small_mlp());
  optim::SGD opt_a(a->parameters(), recipe()), opt_b(b->parameters(), recipe());
  TrainStep step = compile_train_step(*b, nn::cross_entropy, opt_b, kX, kY);
  auto [x, y] = batch(0);
  std::shared_ptr<const Graph> g;
  familiar_step(*a, opt_a, x, y, &g);
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(print(*g), print(step.graph()));
  // A second iteration records the same graph again.
  familiar_step(*a, opt_a, x, y, &g);
  EXPECT_EQ(print(*g), print(step.graph()));
}

TEST(Step, BothPathsComputeTheSameTrajectory) {
  manual_seed(2);
  auto a = make_mlp(small_mlp());
  manual_seed(2);
  auto b = make_mlp(small_mlp());
  optim::SGD opt_a(a->parameters(), recipe()), opt_b(b->parameters(), recipe());
  TrainStep step = compile_train_step(*b, nn::cross_entropy, opt_b, kX, kY);
  clear_compile_cache();
  for (int k = 0; k < 4; ++k) {
    auto [x, y] = batch(k);
    manual_seed(100 + k); // the same dropout masks on both sides
    double la = familiar_step(*a, opt_a, x, y);
    manual_seed(100 + k);
    double lb = step(x, y);
    EXPECT_EQ(la, lb) << k;
  }
  // One executable served both paths and every iteration.
  EXPECT_EQ(compile_cache_size(), 1u);
  auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i)
    for (int64_t j = 0; j < pa[i]->value().numel(); ++j)
      ASSERT_EQ(pa[i]->value().get(j), pb[i]->value().get(j)) << pa[i]->name();
}

// A label outside [0, classes) is an error that names the input and the
// element, raised before the step runs: no parameter or buffer changes.
// (Fusion turns one_hot into a compare inside the kernels; its label check
// becomes the range of the %y input, printed as `%y: i32[8] in [0, 4)`.)
TEST(Step, OutOfRangeLabelIsAnErrorAndChangesNothing) {
  manual_seed(4);
  auto m = make_mlp(small_mlp(0));
  optim::SGD opt(m->parameters(), recipe());
  TrainStep step = compile_train_step(*m, nn::cross_entropy, opt, kX, kY);
  auto [x, y] = batch(0);
  step(x, y); // a good step, so that the momentum buffers are not zero
  std::vector<Array> before;
  for (auto &p : m->parameters())
    before.push_back(p->value().clone());
  for (double bad : {4.0, -1.0}) {
    y.set(5, bad);
    try {
      step(x, y);
      ADD_FAILURE() << "label " << bad << " was accepted";
    } catch (const Error &e) {
      EXPECT_NE(std::string(e.what()).find(fmt::format(
                    "input %y of @step: element 5 is {}, outside [0, 4), the "
                    "range of the one_hot {{num_classes = 4}} in nll_loss that "
                    "reads it",
                    bad)),
                std::string::npos)
          << e.what();
    }
  }
  auto ps = m->parameters();
  for (size_t i = 0; i < ps.size(); ++i)
    for (int64_t j = 0; j < ps[i]->value().numel(); ++j)
      ASSERT_EQ(ps[i]->value().get(j), before[i].get(j)) << ps[i]->name();
  y.set(5, 1);
  EXPECT_TRUE(std::isfinite(step(x, y)));
}

TEST(Step, StepGraphInputOutputConvention) {
  manual_seed(3);
  auto m = make_mlp(small_mlp());
  optim::SGD opt(m->parameters(), recipe());
  TrainStep step = compile_train_step(*m, nn::cross_entropy, opt, kX, kY);
  const Graph &g = step.graph();
  EXPECT_EQ(g.name, "step");
  std::vector<std::string> names;
  std::vector<InputKind> kinds;
  for (const GraphInput &in : g.inputs()) {
    names.push_back(in.value->name);
    kinds.push_back(in.kind);
  }
  std::vector<std::string> want = {"x",
                                   "y",
                                   "lr",
                                   "seed",
                                   "offset",
                                   "fc1.weight",
                                   "fc1.bias",
                                   "fc2.weight",
                                   "fc2.bias",
                                   "fc3.weight",
                                   "fc3.bias",
                                   "fc1.weight.momentum_buffer",
                                   "fc1.bias.momentum_buffer",
                                   "fc2.weight.momentum_buffer",
                                   "fc2.bias.momentum_buffer",
                                   "fc3.weight.momentum_buffer",
                                   "fc3.bias.momentum_buffer"};
  EXPECT_EQ(names, want);
  for (size_t i = 0; i < kinds.size(); ++i)
    EXPECT_EQ(kinds[i], i < 5    ? InputKind::data
                        : i < 11 ? InputKind::param
                                 : InputKind::state)
        << names[i];
  EXPECT_EQ(g.inputs()[2].value->type, (Type{DType::f32, {}}));
  // Outputs: loss, then each param and each buffer updated in place.
  ASSERT_EQ(g.outputs.size(), 13u);
  EXPECT_EQ(g.outputs[0].value->name, "loss");
  EXPECT_EQ(g.outputs[0].alias, -1);
  for (int i = 1; i < 13; ++i)
    EXPECT_EQ(g.outputs[i].alias, 4 + i) << i;
  EXPECT_EQ(g.outputs[1].value->name, "fc1.weight_next");
}

TEST(Step, EvalCompilesItsOwnGraphAndUpdatesNothing) {
  manual_seed(4);
  auto m = make_mlp(small_mlp());
  optim::SGD opt(m->parameters(), recipe());
  TrainStep step = compile_train_step(*m, nn::cross_entropy, opt, kX, kY);
  auto [x, y] = batch(1);
  step(x, y);
  Array w = m->parameters()[0]->value().clone();
  m->eval();
  Tensor logits = (*m)(Tensor::from(x, "x"));
  Array out = logits.to_host();
  m->train();
  EXPECT_EQ(out.type(), (Type{DType::f32, {B, 4}}));
  auto g = logits.trace().finished_graph();
  EXPECT_EQ(g->name, "forward");
  for (const GraphInput &in : g->inputs())
    EXPECT_NE(in.kind, InputKind::state) << in.value->name;
  EXPECT_EQ(print(*g).find("random_uniform"), std::string::npos);
  for (int64_t j = 0; j < w.numel(); ++j)
    ASSERT_EQ(m->parameters()[0]->value().get(j), w.get(j));
  // Evaluating twice gives the same logits (no dropout, no update).
  m->eval();
  Array again = (*m)(Tensor::from(x, "x")).to_host();
  for (int64_t j = 0; j < out.numel(); ++j)
    EXPECT_EQ(out.get(j), again.get(j));
}

TEST(Step, ALastBatchOfAnotherSizeGetsItsOwnExecutable) {
  manual_seed(5);
  auto m = make_mlp(small_mlp(0));
  optim::SGD opt(m->parameters(), recipe());
  clear_compile_cache();
  auto [x, y] = batch(0);
  familiar_step(*m, opt, x, y);
  familiar_step(*m, opt, x, y);
  EXPECT_EQ(compile_cache_size(), 1u);
  auto [x3, y3] = batch(0, 3);
  EXPECT_TRUE(std::isfinite(familiar_step(*m, opt, x3, y3)));
  EXPECT_EQ(compile_cache_size(), 2u);
  // A compiled step rejects a batch of the wrong type with a clear message.
  TrainStep step = compile_train_step(*m, nn::cross_entropy, opt, kX, kY);
  EXPECT_THROW(step(x3, y3), Error);
}

TEST(Step, TraceStages) {
  manual_seed(6);
  auto m = make_mlp(small_mlp(0));
  optim::SGD opt(m->parameters(), recipe());
  Program traced =
      trace_train_step(*m, nn::cross_entropy, &opt, kX, kY, TraceStage::traced);
  Program grads = trace_train_step(*m, nn::cross_entropy, &opt, kX, kY,
                                   TraceStage::autodiff);
  Program full =
      trace_train_step(*m, nn::cross_entropy, &opt, kX, kY, TraceStage::step);
  EXPECT_EQ(traced.graph().outputs.size(), 1u);
  ASSERT_EQ(grads.graph().outputs.size(), 7u);
  EXPECT_EQ(grads.graph().outputs[1].value->name, "grad_fc1.weight");
  EXPECT_EQ(grads.graph().outputs[1].value->type, m->parameters()[0]->type());
  EXPECT_EQ(full.graph().outputs.size(), 13u);
  // Each stage extends the previous one.
  EXPECT_LT(traced.graph().nodes().size(), grads.graph().nodes().size());
  EXPECT_LT(grads.graph().nodes().size(), full.graph().nodes().size());
  // The autodiff stage agrees with the autodiff pass on the traced graph.
  double l = grads.run()[0].get(0), l0 = traced.run()[0].get(0);
  EXPECT_EQ(l, l0);
}

// The graph `kiln ir --model mlp --stage step` prints: the built-in
// 784-256-128-10 MLP with SGD, momentum 0.9 and weight decay 5e-4.
TEST(Step, BuiltinMlpStepGraph) {
  auto m = make_mlp();
  DefaultRecipe r;
  optim::SGDOptions o;
  o.lr = r.lr;
  o.momentum = r.momentum;
  o.weight_decay = r.weight_decay;
  optim::SGD opt(m->parameters(), o);
  Program p =
      trace_train_step(*m, nn::cross_entropy, &opt, {DType::f32, {64, 784}},
                       {DType::i32, {64}}, TraceStage::step);
  std::string ir = print(p.graph());
  for (const char *want :
       {"graph @step(%x: f32[64,784], %y: i32[64], %lr: f32[], param "
        "%fc1.weight: f32[256,784]",
        "%0 = transpose(%fc1.weight) {perm = [1, 0]} : f32[784,256]",
        "%1 = matmul(%x, %0) : f32[64,256]",
        "log_softmax(%10) {axis = -1} : f32[64,10]",
        "%fc3.bias_next = sub(%fc3.bias, ", "constant() {value = 0.0005}",
        "constant() {value = 0.9}", "%fc1.weight_next -> %fc1.weight",
        "%fc3.bias.momentum_buffer_next -> %fc3.bias.momentum_buffer\n}"})
    EXPECT_NE(ir.find(want), std::string::npos) << want << "\n" << ir;
  EXPECT_EQ(ir.find("random_uniform"), std::string::npos);
}

// Two epochs of the built-in 784-256-128-10 MLP on 2,000 Fashion-MNIST
// images, on the reference interpreter: the loss goes down.
TEST(Step, MlpLearnsFashionMnistSubset) {
  if (!std::filesystem::exists(FashionMnist::default_dir()))
    GTEST_SKIP() << "no Fashion-MNIST at " << FashionMnist::default_dir()
                 << " (apt install dataset-fashion-mnist)";
  FashionMnist train(Split::train);
  Subset part = take_first(train, 2000);
  DataLoaderOptions lo;
  lo.batch_size = 64;
  lo.shuffle = true;
  lo.seed = 1;
  lo.drop_last = true;
  DataLoader loader(part, lo);
  manual_seed(0);
  auto model = make_mlp();
  optim::SGD opt(model->parameters(), recipe());
  opt.set_lr(0.05);
  Type xt{DType::f32, {64, 784}}, yt{DType::i32, {64}};
  TrainStep step = compile_train_step(*model, nn::cross_entropy, opt, xt, yt);
  std::vector<double> epoch_loss;
  double first = 0;
  for (int e = 0; e < 2; ++e) {
    double total = 0;
    int n = 0;
    for (const Batch &b : loader) {
      Array x = make_array(b.x_shape, std::span<const float>(b.x));
      Array y = make_array({static_cast<int64_t>(b.size())},
                           std::span<const int32_t>(b.y));
      double l = step(x, y);
      if (e == 0 && n == 0)
        first = l;
      total += l;
      ++n;
    }
    epoch_loss.push_back(total / n);
  }
  EXPECT_NEAR(first, std::log(10.0), 0.3); // chance level at the start
  EXPECT_LT(epoch_loss[1], epoch_loss[0])
      << "first batch " << first << ", epochs " << epoch_loss[0] << " -> "
      << epoch_loss[1];
  EXPECT_LT(epoch_loss[1], 0.9 * first);
}

} // namespace
} // namespace kiln
