#include "frontend/lr_scheduler.h"

#include "ir/error.h"

#include <cmath>
#include <numbers>

namespace kiln::optim {

LRScheduler::LRScheduler(Optimizer &opt) : opt_(opt), base_lr_(opt.lr()) {}

void LRScheduler::step() { opt_.set_lr(lr_at(++epoch_)); }

void LRScheduler::set_step(int64_t epoch) {
  if (epoch < 0)
    fail("lr schedule: cannot jump to step {}", epoch);
  epoch_ = epoch;
  opt_.set_lr(lr_at(epoch_));
}

StepLR::StepLR(Optimizer &opt, int64_t step_size, double gamma)
    : LRScheduler(opt), step_size_(step_size), gamma_(gamma) {
  if (step_size <= 0)
    fail("StepLR: step_size must be positive, got {}", step_size);
  init();
}

double StepLR::lr_at(int64_t epoch) const {
  return base_lr() * std::pow(gamma_, static_cast<double>(epoch / step_size_));
}

ExponentialLR::ExponentialLR(Optimizer &opt, double gamma)
    : LRScheduler(opt), gamma_(gamma) {
  init();
}

double ExponentialLR::lr_at(int64_t epoch) const {
  return base_lr() * std::pow(gamma_, static_cast<double>(epoch));
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer &opt, int64_t t_max,
                                     double eta_min)
    : LRScheduler(opt), t_max_(t_max), eta_min_(eta_min) {
  if (t_max <= 0)
    fail("CosineAnnealingLR: T_max must be positive, got {}", t_max);
  init();
}

double CosineAnnealingLR::lr_at(int64_t epoch) const {
  double c = std::cos(std::numbers::pi * static_cast<double>(epoch) /
                      static_cast<double>(t_max_));
  return eta_min_ + (base_lr() - eta_min_) * (1 + c) / 2;
}

LinearWarmup::LinearWarmup(Optimizer &opt, int64_t warmup_steps,
                           std::unique_ptr<LRScheduler> after,
                           double start_factor)
    : LRScheduler(opt), warmup_(warmup_steps), after_(std::move(after)),
      start_factor_(start_factor) {
  if (warmup_steps <= 0)
    fail("LinearWarmup: warmup_steps must be positive, got {}", warmup_steps);
  if (!(start_factor > 0 && start_factor <= 1))
    fail("LinearWarmup: start_factor must be in (0, 1], got {}", start_factor);
  if (after_ && after_->base_lr() != base_lr())
    fail("LinearWarmup: the wrapped schedule's base lr {} differs from {}",
         after_->base_lr(), base_lr());
  init();
}

double LinearWarmup::lr_at(int64_t epoch) const {
  if (epoch < warmup_)
    return base_lr() *
           (start_factor_ + (1 - start_factor_) * static_cast<double>(epoch) /
                                static_cast<double>(warmup_));
  return after_ ? after_->lr_at(epoch - warmup_) : base_lr();
}

} // namespace kiln::optim
