// The built-in MLP's training step (784-256-128-10, cross-entropy, SGD with
// momentum 0.9 and weight decay 5e-4, batch 64) through the default pass
// pipeline: how many kernels it launches, what the memory plan saves, and
// that the fused step computes what the unfused one does (f64, reference
// interpreter). `kiln ir --model mlp --stage fused` prints the same summary.
#include "frontend/compile.h"
#include "frontend/loss.h"
#include "frontend/models.h"
#include "frontend/optim.h"
#include "frontend/random.h"
#include "ir/interpreter.h"
#include "passes/pass_manager.h"
#include "plan/kernel_summary.h"
#include "plan/memory_plan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace kiln {
namespace {

constexpr int64_t kBatch = 64;

optim::SGDOptions default_sgd() {
  DefaultRecipe r;
  optim::SGDOptions o;
  o.lr = r.lr;
  o.momentum = r.momentum;
  o.weight_decay = r.weight_decay;
  return o;
}

// The step graph of the built-in MLP in `dtype`.
std::unique_ptr<Graph> builtin_step(DType dtype) {
  manual_seed(3);
  MlpOptions mo;
  mo.dtype = dtype;
  auto m = make_mlp(mo);
  optim::SGD opt(m->parameters(), default_sgd());
  Program p =
      trace_train_step(*m, nn::cross_entropy, &opt, {dtype, {kBatch, 784}},
                       {DType::i32, {kBatch}}, TraceStage::step);
  return p.graph().clone();
}

std::unique_ptr<Graph> run_default_pipeline(const Graph &g) {
  std::unique_ptr<Graph> out = g.clone();
  PassOptions o;
  o.verify_each = true;
  o.read_env = false;
  PassManager pm(o);
  pm.add_pipeline(default_pipeline());
  pm.run(*out);
  return out;
}

TEST(MlpPipeline, KernelCountAfterTheDefaultPipeline) {
  std::unique_ptr<Graph> step = builtin_step(DType::f32);
  std::unique_ptr<Graph> fused = run_default_pipeline(*step);
  std::vector<KernelInfo> kernels = summarize_kernels(*fused);
  std::map<std::string, int> kinds;
  for (const KernelInfo &k : kernels)
    ++kinds[k.kind];
  std::string summary = format_kernel_summary(kernels);
  // Forward: x@W1, h1@W2, h2@W3. Backward: dW3, dh2, dW2, dh1, dW1 (dx is
  // not needed): 8 GEMMs.
  EXPECT_EQ(kinds["gemm"], 8) << summary;
  // Every parameter's weight decay, momentum and update in one launch.
  EXPECT_EQ(kinds["multi_tensor"], 1) << summary;
  // The bound: at most 16 kernels. The pipeline gives exactly 16:
  //  - 8 GEMMs and the multi-tensor update;
  //  - forward: add+relu twice (elementwise), add+log_softmax (reduction);
  //  - the loss: iota one-hot, mul, sum and the scalar epilogue (/ -64) in
  //    one reduction kernel;
  //  - dlogits (its row sum of the one-hot folded away by canonicalize)
  //    written by the column-sum kernel of fc3's bias gradient;
  //  - twice the relu backward written by its bias gradient's column sum.
  EXPECT_EQ(kinds["reduction"], 5) << summary;
  EXPECT_EQ(kinds["elementwise"], 2) << summary;
  EXPECT_LE(kernels.size(), 16u) << summary;
  // Nothing but GEMMs and fused kernels: one_hot(y) fuses into its users.
  for (const auto &[kind, n] : kinds)
    EXPECT_TRUE(kind == "gemm" || kind == "elementwise" ||
                kind == "reduction" || kind == "multi_tensor")
        << kind << " x" << n << "\n"
        << summary;
  // The unfused step launches far more.
  EXPECT_GT(summarize_kernels(*step).size(), 2 * kernels.size());
}

TEST(MlpPipeline, MemoryPlanReusesBuffers) {
  std::unique_ptr<Graph> fused =
      run_default_pipeline(*builtin_step(DType::f32));
  MemoryPlan plan = plan_memory(*fused);
  EXPECT_GT(plan.arena_bytes, 0);
  EXPECT_LT(plan.arena_bytes, plan.no_reuse_bytes) << memory_plan_summary(plan);
  // Every parameter and momentum buffer (6 + 6) is updated in place.
  EXPECT_EQ(plan.in_place.size() + plan.copy_back.size(), 12u);
  EXPECT_EQ(plan.copy_back.size(), 0u) << memory_plan_summary(plan);
  // The largest activation ([64,256] f32 = 64 KiB) must fit.
  EXPECT_GE(plan.arena_bytes, 64 * 256 * 4);
}

HostTensor to_host(const Array &a) {
  HostTensor t(a.type());
  for (int64_t i = 0; i < a.numel(); ++i)
    t.data[i] = a.get(i);
  return t;
}

// Two whole steps (the second with a non-zero momentum buffer) of the
// unfused and the fused graph on the reference interpreter in f64: the
// loss and every updated parameter and buffer agree to 1e-12.
TEST(MlpPipeline, FusedStepEqualsUnfusedInF64) {
  manual_seed(11);
  MlpOptions mo;
  mo.dtype = DType::f64;
  auto m = make_mlp(mo);
  optim::SGD opt(m->parameters(), default_sgd());
  Program p =
      trace_train_step(*m, nn::cross_entropy, &opt, {DType::f64, {kBatch, 784}},
                       {DType::i32, {kBatch}}, TraceStage::step);
  const Graph &unfused = p.graph();
  std::unique_ptr<Graph> fused = run_default_pipeline(unfused);
  ASSERT_LT(summarize_kernels(*fused).size(),
            summarize_kernels(unfused).size());

  std::vector<HostTensor> in;
  for (const Array &a : p.gather_inputs())
    in.push_back(to_host(a));
  int x = p.input_index("x"), y = p.input_index("y");
  ASSERT_GE(x, 0);
  ASSERT_GE(y, 0);
  for (int64_t i = 0; i < in[x].numel(); ++i)
    in[x].data[i] = std::sin(0.013 * static_cast<double>(i)) * 0.8 + 0.1;
  for (int64_t i = 0; i < kBatch; ++i)
    in[y].data[i] = static_cast<double>((i * 7) % 10);

  std::vector<HostTensor> a_in = in, b_in = in;
  for (int s = 0; s < 2; ++s) {
    std::vector<HostTensor> a = interpret(unfused, a_in);
    std::vector<HostTensor> b = interpret(*fused, b_in);
    ASSERT_EQ(a.size(), b.size());
    ASSERT_EQ(a.size(), 13u); // loss, 6 params, 6 momentum buffers
    for (size_t o = 0; o < a.size(); ++o) {
      ASSERT_EQ(a[o].type, b[o].type) << "output " << o;
      double worst = 0;
      for (int64_t i = 0; i < a[o].numel(); ++i) {
        double d = std::abs(a[o].data[i] - b[o].data[i]);
        double scale = std::max(std::abs(a[o].data[i]), 1e-3);
        worst = std::max(worst, d / scale);
      }
      EXPECT_LE(worst, 1e-12) << "step " << s << ", output " << o << " ("
                              << unfused.outputs[o].value->name << ")";
    }
    // The loss is a real cross-entropy: near ln(10) at the start.
    EXPECT_NEAR(a[0].item(), std::log(10.0), 0.5);
    // Feed the updated params and buffers into the next step.
    for (size_t o = 1; o < a.size(); ++o) {
      int alias = unfused.outputs[o].alias;
      ASSERT_GE(alias, 0) << "output " << o << " updates no input";
      a_in[alias] = a[o];
      b_in[alias] = b[o];
    }
  }
  // The momentum buffers did change between the steps (a real second step).
  EXPECT_NE(a_in.back().data, in.back().data);
}

} // namespace
} // namespace kiln
