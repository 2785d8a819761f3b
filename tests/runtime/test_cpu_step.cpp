// A whole MLP training step (forward, cross-entropy, autodiff backward, SGD
// with momentum and weight decay updating params in place) on the CPU
// backend against the reference interpreter, for several steps; and the
// device choice.
#include "cpu_test_util.h"

#include "ir/error.h"
#include "passes/autodiff.h"
#include "passes/pass_manager.h"
#include "plan/plan.h"
#include "runtime/device.h"

#include <array>
#include <cstdlib>

namespace kiln {
namespace {

using test::check_against_interpreter;
using test::random_inputs;

// x: [B, in] -> fc1 (relu) -> fc2 logits [B, classes]; loss = mean NLL.
std::unique_ptr<Graph> mlp_step(int64_t batch, int64_t in, int64_t hidden,
                                int64_t classes) {
  return test::mlp_step_graph(batch, {in, hidden, classes});
}

std::vector<Array> step_inputs(const Graph &g, int64_t classes) {
  return test::mlp_step_inputs(g, classes, 31);
}

TEST(CpuStep, MlpTrainingStepMatchesInterpreter) {
  auto g = mlp_step(64, 784, 33, 10);
  auto exe = make_cpu_backend()->compile(*g);
  const CpuExecutableStats *st = cpu_executable_stats(*exe);
  EXPECT_EQ(st->inplace_outputs, 8);
  EXPECT_GE(st->folded_transposes, 2);
  EXPECT_GT(st->arena_bytes, 0u);
  check_against_interpreter(*g, step_inputs(*g, 10), "mlp step", 4, 1e-4, 1e-6);
}

TEST(CpuStep, OddSizes) {
  auto g = mlp_step(7, 13, 5, 3);
  check_against_interpreter(*g, step_inputs(*g, 3), "mlp step 7x13", 3, 1e-4,
                            1e-6);
}

TEST(CpuStep, LossDecreases) {
  auto g = mlp_step(64, 784, 33, 10);
  auto exe = make_cpu_backend()->compile(*g);
  std::vector<Array> in = step_inputs(*g, 10);
  double first = exe->run(in)[0].get(0), last = first;
  for (int s = 0; s < 20; ++s)
    last = exe->run(in)[0].get(0);
  EXPECT_LT(last, first);
}

// The step through kiln's default pass pipeline (fusion of elementwise
// chains, reductions and the optimizer): the fused graph on the CPU backend
// against the unfused graph on the interpreter.
TEST(CpuStep, FusedPipelineMatchesUnfusedInterpreter) {
  for (auto [batch, in, hidden, classes] :
       {std::array<int64_t, 4>{64, 784, 33, 10}, {7, 13, 5, 3}}) {
    auto g = mlp_step(batch, in, hidden, classes);
    auto fused = g->clone();
    PassOptions opts;
    opts.read_env = false;
    opts.verify_each = true;
    PassManager pm(opts);
    pm.add_pipeline(default_pipeline());
    pm.run(*fused);
    int n_fused = 0;
    for (auto &n : fused->nodes())
      n_fused += n->op == Op::Fused;
    EXPECT_GT(n_fused, 0);
    auto cpu = make_cpu_backend()->compile(*fused);
    const CpuExecutableStats *st = cpu_executable_stats(*cpu);
    EXPECT_EQ(st->inplace_outputs, 8) << "params and momenta updated in place";
    EXPECT_EQ(st->copies, 0);
    EXPECT_GE(st->folded_transposes, 2);
    auto ref = make_interpreter_backend()->compile(*g);
    std::vector<Array> a = step_inputs(*g, classes);
    std::vector<Array> b = test::clone_all(a);
    for (int s = 0; s < 3; ++s) {
      std::vector<Array> got = cpu->run(a), want = ref->run(b);
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i)
        test::expect_close(got[i], want[i],
                           fmt::format("fused step {} output {}", s, i), 1e-4,
                           1e-6);
    }
  }
}

// The CPU runtime only walks the plan: every run performs exactly the plan's
// launches, the MLP step is at most 16 of them (one per fused kernel and
// GEMM), and no transpose runs as a kernel of its own.
TEST(CpuStep, RunsExactlyThePlansLaunches) {
  auto g = mlp_step(64, 784, 256, 10);
  PassOptions opts;
  opts.read_env = false;
  opts.verify_each = true;
  PassManager pm(opts);
  pm.add_pipeline(default_pipeline());
  pm.run(*g);
  auto exe = make_cpu_backend()->compile(*g);
  const ExecutionPlan *plan = cpu_executable_plan(*exe);
  ASSERT_NE(plan, nullptr);
  int64_t n = static_cast<int64_t>(plan->launches.size());
  EXPECT_LE(n, 16);
  EXPECT_EQ(plan->count(LaunchKind::gemm), 5); // 2 forward, 3 backward
  EXPECT_EQ(plan->count(LaunchKind::copy), 0);
  for (const Launch &l : plan->launches) {
    if (l.kind == LaunchKind::kernel) {
      EXPECT_NE(l.kernel->op, Op::Transpose) << l.name;
    }
  }
  int trans = 0;
  for (const Launch &l : plan->launches)
    trans += l.kind == LaunchKind::gemm && (l.gemm.trans_a || l.gemm.trans_b);
  EXPECT_EQ(trans, 3) << "the backward GEMMs read W^T and X^T by flag";
  const CpuExecutableStats *st = cpu_executable_stats(*exe);
  EXPECT_EQ(st->launches_run, 0);
  std::vector<Array> in = step_inputs(*g, 10);
  exe->run(in);
  EXPECT_EQ(st->launches_run, n);
  exe->run(in);
  EXPECT_EQ(st->launches_run, 2 * n);
  EXPECT_EQ(st->gemm_launches + st->kernel_launches + st->host_launches +
                st->copies,
            n);
}

TEST(Device, EnvironmentChoosesTheBackend) {
  const char *old = std::getenv("KILN_DEVICE");
  std::string saved = old ? old : "";
  setenv("KILN_DEVICE", "interpreter", 1);
  EXPECT_EQ(best_backend()->name(), "interpreter");
  setenv("KILN_DEVICE", "cpu", 1);
  EXPECT_EQ(best_backend()->name(), "cpu");
  setenv("KILN_DEVICE", "nonsense", 1);
  EXPECT_THROW(best_backend(), Error);
  unsetenv("KILN_DEVICE");
  auto best = best_backend();
  EXPECT_TRUE(best->name() == "cpu" || best->name() == "cuda");
  if (best->name() == "cpu") {
    setenv("KILN_DEVICE", "cuda", 1);
    EXPECT_THROW(best_backend(), Error);
  }
  if (old)
    setenv("KILN_DEVICE", saved.c_str(), 1);
  else
    unsetenv("KILN_DEVICE");
}

} // namespace
} // namespace kiln
