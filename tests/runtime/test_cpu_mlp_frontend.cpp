// The built-in MLP's training step, as `kiln train` compiles it (make_mlp,
// cross-entropy, SGD momentum 0.9 + weight decay 5e-4, compile_train_step,
// the default pass pipeline), on the CPU backend against the reference
// interpreter over 20 steps: the losses and the final parameters and
// momentum buffers agree to 1e-4 relative in f32.
#include "frontend/compile.h"
#include "frontend/loss.h"
#include "frontend/models.h"
#include "frontend/optim.h"
#include "frontend/random.h"
#include "frontend/trace.h"
#include "runtime/cpu_backend.h"

#include <gtest/gtest.h>

#include <cmath>

namespace kiln {
namespace {

struct TrainRun {
  std::vector<float> losses;
  std::vector<Array> params, state;
};

TrainRun train_20_steps(std::unique_ptr<Backend> backend) {
  set_default_backend(std::move(backend));
  manual_seed(7);
  auto model = make_mlp();
  optim::SGD opt(model->parameters(),
                 {.lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4});
  constexpr int64_t kBatch = 16;
  TrainStep step =
      compile_train_step(*model, nn::cross_entropy, opt,
                         {DType::f32, {kBatch, 784}}, {DType::i32, {kBatch}});
  TrainRun run;
  for (int s = 0; s < 20; ++s) {
    Array x({DType::f32, {kBatch, 784}}), y({DType::i32, {kBatch}});
    for (int64_t i = 0; i < x.numel(); ++i)
      x.set(i, std::sin(0.013 * static_cast<double>(i) + (s % 2)));
    for (int64_t i = 0; i < kBatch; ++i)
      y.set(i, static_cast<double>((i * 7 + s % 2) % 10));
    run.losses.push_back(step(x, y));
  }
  for (const auto &p : model->parameters())
    run.params.push_back(p->value().clone());
  for (auto &[name, a] : opt.named_state())
    run.state.push_back(a->clone());
  set_default_backend(make_interpreter_backend());
  return run;
}

void expect_close(const Array &got, const Array &want, const char *what) {
  ASSERT_EQ(got.type(), want.type()) << what;
  int bad = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    double g = got.get(i), w = want.get(i);
    if (std::fabs(g - w) > 1e-4 * std::fabs(w) + 1e-6 && bad++ < 5)
      ADD_FAILURE() << what << "[" << i << "]: cpu " << g << ", interpreter "
                    << w;
  }
}

TEST(CpuMlp, TwentyStepsMatchTheInterpreter) {
  TrainRun cpu = train_20_steps(make_cpu_backend());
  TrainRun ref = train_20_steps(make_interpreter_backend());
  ASSERT_EQ(cpu.losses.size(), 20u);
  for (size_t s = 0; s < cpu.losses.size(); ++s)
    EXPECT_NEAR(cpu.losses[s], ref.losses[s], 1e-4 * std::fabs(ref.losses[s]))
        << "step " << s;
  // Two alternating batches: 20 steps start to fit them (2.31 -> 1.82).
  EXPECT_LT(ref.losses.back(), 0.9 * ref.losses.front());
  ASSERT_EQ(cpu.params.size(), ref.params.size());
  for (size_t i = 0; i < cpu.params.size(); ++i)
    expect_close(cpu.params[i], ref.params[i], "parameter");
  ASSERT_EQ(cpu.state.size(), ref.state.size());
  for (size_t i = 0; i < cpu.state.size(); ++i)
    expect_close(cpu.state[i], ref.state[i], "momentum buffer");
}

} // namespace
} // namespace kiln
