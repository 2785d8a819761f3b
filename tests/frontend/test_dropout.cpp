// Dropout: the mask rate and scale in training, the identity in evaluation,
// and a new mask on every run of the same compiled step.
#include "frontend/compile.h"
#include "frontend/layers.h"
#include "frontend/loss.h"
#include "frontend/optim.h"
#include "frontend/random.h"
#include "ir/error.h"
#include "ir/printer.h"

#include <gtest/gtest.h>

#include <cmath>

namespace kiln {
namespace {

Array ones(Shape s) {
  Array a(Type{DType::f32, std::move(s)});
  for (int64_t i = 0; i < a.numel(); ++i)
    a.set(i, 1.0);
  return a;
}

TEST(Dropout, TrainingDropsAboutPAndScalesTheRest) {
  manual_seed(1);
  nn::Dropout drop(0.3);
  Tensor y = drop(Tensor::from(ones({100, 100})));
  Array out = y.to_host();
  int64_t zeros = 0;
  float scale = static_cast<float>(1.0 / 0.7);
  for (int64_t i = 0; i < out.numel(); ++i) {
    if (out.get(i) == 0)
      ++zeros;
    else
      EXPECT_EQ(out.get(i), scale) << i;
  }
  // 10,000 draws: the rate's standard deviation is about 0.0046.
  EXPECT_NEAR(static_cast<double>(zeros) / out.numel(), 0.3, 0.02);
  // seed and offset are i64[] data inputs of the realized graph.
  auto g = y.trace().finished_graph();
  ASSERT_NE(g, nullptr);
  ASSERT_GE(g->inputs().size(), 3u);
  EXPECT_EQ(g->inputs()[1].value->name, "seed");
  EXPECT_EQ(g->inputs()[2].value->name, "offset");
  EXPECT_EQ(g->inputs()[2].value->type, (Type{DType::i64, {}}));
}

TEST(Dropout, EvalIsTheIdentityAndDrawsNothing) {
  nn::Dropout drop(0.5);
  drop->eval();
  EXPECT_FALSE(drop->is_training());
  Array x = ones({4, 4});
  x.set(3, 2.5);
  Tensor y = drop(Tensor::from(x));
  Array out = (y * 1.0).to_host();
  for (int64_t i = 0; i < x.numel(); ++i)
    EXPECT_EQ(out.get(i), x.get(i));
  std::string ir = print(*y.trace().finished_graph());
  EXPECT_EQ(ir.find("random_uniform"), std::string::npos) << ir;
  EXPECT_EQ(ir.find("seed"), std::string::npos) << ir;
}

TEST(Dropout, ZeroAndOneProbabilities) {
  Array x = ones({3, 3});
  Array a = (nn::Dropout(0.0)(Tensor::from(x)) * 1.0).to_host();
  Array b = nn::Dropout(1.0)(Tensor::from(x)).to_host();
  for (int64_t i = 0; i < 9; ++i) {
    EXPECT_EQ(a.get(i), 1.0);
    EXPECT_EQ(b.get(i), 0.0);
  }
  EXPECT_THROW(nn::Dropout(1.5), Error);
}

// Two realizations of the same ops (one cached executable) draw different
// masks, because the offset input advances after each run.
TEST(Dropout, NewMaskEveryStepOfTheFamiliarLoop) {
  manual_seed(5);
  clear_compile_cache();
  nn::Dropout drop(0.5);
  Array x = ones({64});
  Array m1 = drop(Tensor::from(x)).to_host();
  Array m2 = drop(Tensor::from(x)).to_host();
  EXPECT_EQ(compile_cache_size(), 1u);
  int differ = 0;
  for (int64_t i = 0; i < 64; ++i)
    differ += m1.get(i) != m2.get(i);
  EXPECT_GT(differ, 10);
  // manual_seed restarts the stream: the first mask comes back.
  manual_seed(5);
  Array m3 = drop(Tensor::from(x)).to_host();
  for (int64_t i = 0; i < 64; ++i)
    EXPECT_EQ(m1.get(i), m3.get(i));
}

TEST(Dropout, ReplayedCompiledStepDrawsNewMasks) {
  manual_seed(9);
  nn::Sequential model(nn::Linear(8, 16), nn::ReLU(), nn::Dropout(0.5),
                       nn::Linear(16, 3));
  optim::SGDOptions o;
  o.lr = 0; // parameters stay put: only the mask can change the loss
  optim::SGD opt(model->parameters(), o);
  Type xt{DType::f32, {4, 8}}, yt{DType::i32, {4}};
  auto step = compile_train_step(*model, nn::cross_entropy, opt, xt, yt);
  Array x(xt), y(yt);
  for (int64_t i = 0; i < x.numel(); ++i)
    x.set(i, std::sin(0.7 * static_cast<double>(i)));
  for (int64_t i = 0; i < 4; ++i)
    y.set(i, static_cast<double>(i % 3));
  manual_seed(9);
  float l1 = step(x, y), l2 = step(x, y);
  EXPECT_NE(l1, l2);
  manual_seed(9);
  EXPECT_EQ(step(x, y), l1);
  // Two dropout draws in one step use two counters (offset, offset + 1).
  std::string ir = print(step.graph());
  EXPECT_NE(ir.find("random_uniform(%seed, %offset)"), std::string::npos) << ir;
}

TEST(Dropout, TwoLayersInOneStepDrawIndependentMasks) {
  manual_seed(3);
  nn::Dropout d1(0.5), d2(0.5);
  Tensor x = Tensor::from(ones({256}));
  std::vector<Array> r = realize({d1(x), d2(x)});
  int differ = 0;
  for (int64_t i = 0; i < 256; ++i)
    differ += r[0].get(i) != r[1].get(i);
  EXPECT_GT(differ, 64);
  std::string ir = print(*x.trace().finished_graph());
  EXPECT_NE(ir.find("add(%offset"), std::string::npos) << ir;
}

} // namespace
} // namespace kiln
