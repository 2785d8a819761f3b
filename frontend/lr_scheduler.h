// Learning-rate schedules with torch.optim.lr_scheduler's closed forms.
//
// A scheduler remembers the optimizer's lr at construction as base_lr and
// sets lr = lr_at(0) right away (torch's constructor does the same). Each
// step() advances its counter by one and sets lr = lr_at(counter). Whether
// the counter counts epochs or iterations is up to the caller: call step()
// once per epoch for epoch-based periods (torch's convention) or once per
// iteration with periods in iterations. The lr is a run-time input of the
// step graph, so a schedule never recompiles.
#pragma once

#include "frontend/optim.h"

#include <memory>

namespace kiln::optim {

class LRScheduler {
public:
  explicit LRScheduler(Optimizer &opt);
  virtual ~LRScheduler() = default;

  // The lr for a given epoch (closed form, O(1)).
  virtual double lr_at(int64_t epoch) const = 0;
  void step();
  // Jumps to `epoch` (as if step() had been called that many times since
  // construction) in O(1), for resuming; throws kiln::Error for a negative
  // epoch.
  void set_step(int64_t epoch);
  int64_t last_epoch() const { return epoch_; }
  double base_lr() const { return base_lr_; }

protected:
  // Subclasses call this at the end of their constructor.
  void init() { opt_.set_lr(lr_at(0)); }

private:
  Optimizer &opt_;
  double base_lr_;
  int64_t epoch_ = 0;
};

// base_lr * gamma^floor(epoch / step_size).
class StepLR : public LRScheduler {
public:
  StepLR(Optimizer &opt, int64_t step_size, double gamma = 0.1);
  double lr_at(int64_t epoch) const override;

private:
  int64_t step_size_;
  double gamma_;
};

// base_lr * gamma^epoch.
class ExponentialLR : public LRScheduler {
public:
  ExponentialLR(Optimizer &opt, double gamma);
  double lr_at(int64_t epoch) const override;

private:
  double gamma_;
};

// eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2, torch's
// closed form (which keeps following the cosine past T_max).
class CosineAnnealingLR : public LRScheduler {
public:
  CosineAnnealingLR(Optimizer &opt, int64_t t_max, double eta_min = 0);
  double lr_at(int64_t epoch) const override;

private:
  int64_t t_max_;
  double eta_min_;
};

// Linear warm-up in front of another schedule, as torch's
// SequentialLR([LinearLR(start_factor, total_iters = warmup), after],
// milestones = [warmup]):
//   epoch < warmup: base_lr * (start_factor + (1 - start_factor) * epoch /
//   warmup) otherwise:      after.lr_at(epoch - warmup)
// Without `after`, the lr stays at base_lr after the warm-up.
class LinearWarmup : public LRScheduler {
public:
  LinearWarmup(Optimizer &opt, int64_t warmup_steps,
               std::unique_ptr<LRScheduler> after = nullptr,
               double start_factor = 1.0 / 3);
  double lr_at(int64_t epoch) const override;

private:
  int64_t warmup_;
  std::unique_ptr<LRScheduler> after_;
  double start_factor_;
};

} // namespace kiln::optim
