// LR schedules: kiln's closed forms against torch's recursive ("chainable")
// get_lr formulas, stepped epoch by epoch, plus a few values worked out by
// hand.
#include "frontend/layers.h"
#include "frontend/lr_scheduler.h"
#include "ir/error.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <numbers>

namespace kiln {
namespace {

using std::numbers::pi;

struct Fixture {
  nn::Linear lin{2, 2};
  optim::SGD opt{lin->parameters(), [] {
                   optim::SGDOptions o;
                   o.lr = 0.1;
                   return o;
                 }()};
};

TEST(LRScheduler, StepLRFollowsTorch) {
  Fixture f;
  optim::StepLR s(f.opt, 3, 0.5);
  double lr = 0.1; // torch: lr * gamma when epoch % step_size == 0
  EXPECT_DOUBLE_EQ(f.opt.lr(), lr);
  for (int e = 1; e <= 12; ++e) {
    s.step();
    if (e % 3 == 0)
      lr *= 0.5;
    EXPECT_NEAR(f.opt.lr(), lr, 1e-15) << e;
  }
  EXPECT_NEAR(f.opt.lr(), 0.1 / 16, 1e-15);
}

TEST(LRScheduler, ExponentialLRFollowsTorch) {
  Fixture f;
  optim::ExponentialLR s(f.opt, 0.9);
  double lr = 0.1;
  for (int e = 1; e <= 10; ++e) {
    s.step();
    lr *= 0.9;
    EXPECT_NEAR(f.opt.lr(), lr, 1e-15) << e;
  }
}

// torch.optim.lr_scheduler.CosineAnnealingLR.get_lr, recursive form.
double cosine_recursive(double lr, double base, double eta_min, int e, int T) {
  if (e == 0)
    return base;
  if ((e - 1 - T) % (2 * T) == 0)
    return lr + (base - eta_min) * (1 - std::cos(pi / T)) / 2;
  return (1 + std::cos(pi * e / T)) / (1 + std::cos(pi * (e - 1) / T)) *
             (lr - eta_min) +
         eta_min;
}

TEST(LRScheduler, CosineAnnealingFollowsTorch) {
  Fixture f;
  optim::CosineAnnealingLR s(f.opt, 10, 0.001);
  double lr = 0.1;
  for (int e = 1; e <= 25; ++e) { // past T_max the cosine comes back up
    s.step();
    lr = cosine_recursive(lr, 0.1, 0.001, e, 10);
    EXPECT_NEAR(f.opt.lr(), lr, 1e-12) << e;
  }
  EXPECT_NEAR(s.lr_at(10), 0.001, 1e-15);
  EXPECT_NEAR(s.lr_at(5), 0.001 + 0.099 / 2, 1e-15);
  // 0.001 + 0.099 * (1 + cos(0.3 pi)) / 2, cos(0.3 pi) = 0.58778525229247314
  EXPECT_NEAR(s.lr_at(3), 0.001 + 0.099 * 1.58778525229247314 / 2, 1e-15);
}

// torch's LinearLR.get_lr, recursive form, end_factor = 1.
double linear_recursive(double lr, double start, int e, int total) {
  if (e == 0)
    return lr * start;
  if (e > total)
    return lr;
  return lr * (1 + (1 - start) / (total * start + (e - 1) * (1 - start)));
}

TEST(LRScheduler, LinearWarmupThenCosineFollowsTorchSequentialLR) {
  Fixture f;
  auto cosine = std::make_unique<optim::CosineAnnealingLR>(f.opt, 8);
  optim::LinearWarmup s(f.opt, 4, std::move(cosine), 0.25);
  double lr = linear_recursive(0.1, 0.25, 0, 4);
  EXPECT_NEAR(f.opt.lr(), lr, 1e-15);
  EXPECT_NEAR(lr, 0.025, 1e-15);
  for (int e = 1; e <= 14; ++e) {
    s.step();
    if (e < 4) {
      lr = linear_recursive(lr, 0.25, e, 4);
    } else if (e == 4) {
      lr = 0.1; // SequentialLR: the next scheduler restarts at its step 0
    } else {
      lr = cosine_recursive(lr, 0.1, 0, e - 4, 8);
    }
    EXPECT_NEAR(f.opt.lr(), lr, 1e-12) << e;
  }
}

TEST(LRScheduler, LinearWarmupAloneHoldsTheBaseAfterward) {
  Fixture f;
  optim::LinearWarmup s(f.opt, 2);
  EXPECT_NEAR(f.opt.lr(), 0.1 / 3, 1e-15);
  s.step();
  EXPECT_NEAR(f.opt.lr(), 0.1 * (1.0 / 3 + 2.0 / 3 / 2), 1e-15);
  s.step();
  s.step();
  EXPECT_DOUBLE_EQ(f.opt.lr(), 0.1);
}

// Resuming jumps to a step: set_step(n) gives exactly the lr of n step()
// calls, for every schedule, and is O(1): a step count of 2^62 (a corrupt
// checkpoint's epoch times the steps per epoch) returns at once with a
// finite lr instead of stepping for hours.
TEST(LRScheduler, SetStepJumpsInConstantTime) {
  using Make =
      std::function<std::unique_ptr<optim::LRScheduler>(optim::Optimizer &)>;
  std::vector<std::pair<std::string, Make>> kinds = {
      {"step",
       [](auto &o) { return std::make_unique<optim::StepLR>(o, 3, 0.5); }},
      {"exponential",
       [](auto &o) { return std::make_unique<optim::ExponentialLR>(o, 0.9); }},
      {"cosine",
       [](auto &o) {
         return std::make_unique<optim::CosineAnnealingLR>(o, 10, 0.001);
       }},
      {"warmup_cosine", [](auto &o) {
         return std::make_unique<optim::LinearWarmup>(
             o, 4, std::make_unique<optim::CosineAnnealingLR>(o, 8), 0.25);
       }}};
  for (const auto &[name, make] : kinds) {
    SCOPED_TRACE(name);
    Fixture stepped, jumped;
    auto a = make(stepped.opt), b = make(jumped.opt);
    for (int64_t n = 0; n <= 25; ++n) {
      b->set_step(n);
      EXPECT_EQ(jumped.opt.lr(), stepped.opt.lr()) << n;
      EXPECT_EQ(b->last_epoch(), n);
      a->step();
    }
    b->set_step(int64_t{1} << 62);
    EXPECT_EQ(b->last_epoch(), int64_t{1} << 62);
    EXPECT_TRUE(std::isfinite(jumped.opt.lr()));
    b->step(); // stepping on from there works
    EXPECT_TRUE(std::isfinite(jumped.opt.lr()));
    EXPECT_THROW(b->set_step(-1), Error);
  }
}

TEST(LRScheduler, BadArgumentsThrow) {
  Fixture f;
  EXPECT_THROW(optim::StepLR(f.opt, 0), Error);
  EXPECT_THROW(optim::CosineAnnealingLR(f.opt, 0), Error);
  EXPECT_THROW(optim::LinearWarmup(f.opt, 0), Error);
}

} // namespace
} // namespace kiln
