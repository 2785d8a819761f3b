// Optimizers with torch.optim's update rules, recorded into the step graph.
//
// opt.step() records, for every parameter with a gradient in the active
// trace, its update as IR ops; the new value is assigned to the parameter,
// so the finished graph returns it aliasing the param input (an in-place
// update). Optimizer state (momentum buffers, Adam's moments and step
// count) lives in host Arrays owned by the optimizer and enters the graph as
// `state` inputs updated in place the same way. The learning rate is a
// scalar data input `lr` read from the optimizer each time the step runs, so
// changing it (an LR schedule) never recompiles; its dtype is the
// parameter's (f32 normally, f64 in f64 models, so f64 tests see the exact
// lr) for SGD, f64 for Adam/AdamW, which, like torch, work out their scalar
// factors (lr / bias correction, 1 - lr * weight_decay) in double and round
// only the result. The other hyper-parameters are constants of the graph.
//
// Parameter groups (torch's param_groups) give parts of a model their own
// learning rate or weight decay, e.g. no decay for biases:
//   optim::SGD opt({{weights}, {biases, {.weight_decay = 0}}},
//                  {.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4});
// A group's unset options are the optimizer's. Each group has its own lr
// input (`lr` for the first, `lr.1`, `lr.2`, ... for the others).
#pragma once

#include "frontend/parameter.h"
#include "frontend/tensor.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace kiln::optim {

// What a parameter group overrides; unset: the optimizer's option.
struct GroupOptions {
  std::optional<double> lr = std::nullopt;
  std::optional<double> weight_decay = std::nullopt;
};

struct ParamGroup {
  std::vector<std::shared_ptr<Parameter>> params;
  GroupOptions options = {};
};

class Optimizer {
public:
  // `lr` and `weight_decay` are the defaults of groups that do not set
  // them. A parameter may be in one group only.
  Optimizer(std::vector<ParamGroup> groups, double lr, double weight_decay,
            std::string kind);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer &) = delete;
  Optimizer &operator=(const Optimizer &) = delete;

  // The optimizer's (default) learning rate. set_lr sets it and scales
  // every group that has its own lr by the same factor (what an LR schedule
  // means for torch's groups: each keeps its ratio to the base lr).
  double lr() const { return lr_; }
  void set_lr(double lr);
  size_t num_groups() const { return groups_.size(); }
  double group_lr(size_t group) const { return *groups_.at(group).lr; }
  void set_group_lr(size_t group, double lr);
  double group_weight_decay(size_t group) const {
    return groups_.at(group).weight_decay;
  }
  const std::vector<std::shared_ptr<Parameter>> &
  group_params(size_t group) const {
    return groups_.at(group).params;
  }
  // "sgd", "adam" or "adamw": the prefix of its shared state names, and what
  // a checkpoint records so that another optimizer cannot load its state.
  const std::string &kind() const { return kind_; }
  const std::vector<std::shared_ptr<Parameter>> &params() const {
    return params_;
  }

  // Drops the gradients recorded in the active trace (gradients live in the
  // trace, so a new step starts without any; this matters only when one
  // trace holds several backward() calls). set_to_none = false sets them to
  // zeros instead (kiln::zero_grads), so that step() updates every
  // parameter, as torch does.
  void zero_grad(bool set_to_none = true);
  // Records the update of every parameter that has a gradient in the active
  // trace; does nothing when none has.
  void step();

  // The host Array behind a state slot ("momentum_buffer", "exp_avg", ...)
  // of a parameter, or nullptr before the first step.
  const Array *state(const Parameter &p, const std::string &slot) const;

  // Every state Array by the name its graph input carries
  // ("fc1.weight.momentum_buffer", "sgd.step"), for checkpoints.
  std::map<std::string, Array *> named_state();
  // Restores one state slot by that name (creating it when the optimizer
  // has not stepped yet). The data is copied into the existing Array, so a
  // compiled step keeps seeing it. Throws kiln::Error for an unknown name or
  // a type that does not match.
  void load_state(const std::string &name, const Array &value);
  // The checks of load_state without the write: throws kiln::Error when
  // `name` is not a state of this optimizer or `type` is not its type.
  void check_state(const std::string &name, const Type &type) const;
  // Every state slot this optimizer's configuration uses, by name, with its
  // type, whether or not it has been created yet (a checkpoint must hold
  // exactly these; slots not created yet are zeros, their initial value).
  std::map<std::string, Type> expected_state() const;

protected:
  // Called once per step() before and after the per-parameter updates (the
  // end drops per-step tensors, which would keep the trace alive).
  virtual void begin_step(DType) {}
  virtual void end_step() {}
  // The dtype of the lr input update() gets for a parameter of `param`.
  virtual DType lr_dtype(DType param) const { return param; }
  // The per-parameter and the shared state slots the configuration uses.
  virtual std::vector<std::string> param_slots() const = 0;
  virtual std::vector<std::string> shared_slots() const = 0;
  // Records one parameter's update: w is its current value, g its gradient,
  // lr the learning-rate input. Returns the new value.
  virtual Tensor update(Parameter &p, const Tensor &w, const Tensor &g,
                        const Tensor &lr) = 0;

  // The current value of a per-parameter state slot (zeros before the first
  // step), and its assignment.
  Tensor state_tensor(Parameter &p, const std::string &slot);
  void assign_state(Parameter &p, const std::string &slot, const Tensor &v);
  // The weight decay of p's group.
  double weight_decay(const Parameter &p) const;

  // A scalar state of the optimizer ("<kind>.step"), zero at first.
  Tensor shared_state(const std::string &slot, DType dtype);
  void assign_shared(const std::string &slot, const Tensor &v);

private:
  Array &buffer(const Parameter *p, const std::string &slot, const Type &type);
  // The parameter (nullptr for a shared slot) and slot a state name means.
  std::pair<const Parameter *, std::string>
  resolve_state(const std::string &name) const;

  struct Group {
    std::vector<std::shared_ptr<Parameter>> params;
    std::shared_ptr<double> lr; // shared with the lr inputs' sources
    double lr_ratio;            // lr / the optimizer's lr (1 if unset)
    double weight_decay;
  };
  std::vector<std::shared_ptr<Parameter>> params_; // all groups, in order
  std::vector<Group> groups_;
  std::unordered_map<const Parameter *, size_t> group_of_;
  double lr_;
  std::string kind_;
  std::map<std::pair<const Parameter *, std::string>, Array> state_;
};

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0;
  double dampening = 0;
  bool nesterov = false;
  double weight_decay = 0;
};

// torch.optim.SGD:
//   d = g + weight_decay * w
//   buf = d on the first step, else momentum * buf + (1 - dampening) * d
//   d = nesterov ? d + momentum * buf : buf
//   w = w - lr * d
// The first step: with dampening = 0 the buffer starts at zero, and
// momentum * 0 + d == d exactly, so no flag is needed and the graph stays
// minimal. With dampening != 0 a state counter `sgd.step` selects d on the
// first step (where(step == 0, d, ...)).
class SGD : public Optimizer {
public:
  SGD(std::vector<std::shared_ptr<Parameter>> params, SGDOptions options);
  SGD(std::vector<ParamGroup> groups, SGDOptions options);
  // (A braced list of groups picks this one: `{{w}}` would also convert to
  // a parameter pointer.)
  SGD(std::initializer_list<ParamGroup> groups, SGDOptions options)
      : SGD(std::vector<ParamGroup>(groups), options) {}
  const SGDOptions &options() const { return o_; }

protected:
  void begin_step(DType dtype) override;
  void end_step() override { first_ = Tensor(); }
  Tensor update(Parameter &p, const Tensor &w, const Tensor &g,
                const Tensor &lr) override;
  std::vector<std::string> param_slots() const override;
  std::vector<std::string> shared_slots() const override;

private:
  SGDOptions o_;
  Tensor first_; // bool[]: this is the first step (dampening != 0 only)
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0; // Adam: L2 added to the gradient; AdamW: decoupled
};

// torch.optim.Adam (amsgrad off):
//   step += 1;  g = g + weight_decay * w            (Adam only)
//   w = w * (1 - lr * weight_decay)                 (AdamW only)
//   m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
//   w = w - lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
// The step count is one state input `adam.step` (`adamw.step`) shared by the
// optimizer's parameters (torch keeps one per parameter; they are equal as
// every parameter of a step graph gets a gradient), so the bias corrections
// are computed in the graph and the graph is the same every step. They are
// computed in f64 from the exact betas, with the lr input in f64, and only
// lr / (1 - beta1^step), sqrt(1 - beta2^step) and 1 - lr * weight_decay are
// rounded to the parameter's dtype, as torch computes them on the host in
// double: in f32, 1 - beta2^1 from beta2 rounded to f32 is 1.3e-5 off, which
// made every first update 6.7e-6 (relative) smaller than torch's.
class Adam : public Optimizer {
public:
  Adam(std::vector<std::shared_ptr<Parameter>> params, AdamOptions options);
  Adam(std::vector<ParamGroup> groups, AdamOptions options);
  Adam(std::initializer_list<ParamGroup> groups, AdamOptions options)
      : Adam(std::vector<ParamGroup>(groups), options) {}
  const AdamOptions &options() const { return o_; }

protected:
  Adam(std::vector<ParamGroup> groups, AdamOptions options, bool decoupled);
  void begin_step(DType dtype) override;
  void end_step() override { bc1_ = bc2_sqrt_ = Tensor(); }
  DType lr_dtype(DType) const override { return DType::f64; }
  Tensor update(Parameter &p, const Tensor &w, const Tensor &g,
                const Tensor &lr) override;
  std::vector<std::string> param_slots() const override {
    return {"exp_avg", "exp_avg_sq"};
  }
  std::vector<std::string> shared_slots() const override { return {"step"}; }

private:
  AdamOptions o_;
  bool decoupled_;
  Tensor bc1_, bc2_sqrt_; // f64: 1 - beta1^step, sqrt(1 - beta2^step)
};

// torch.optim.AdamW: Adam with decoupled weight decay (default 1e-2).
class AdamW : public Adam {
public:
  static AdamOptions defaults() {
    AdamOptions o;
    o.weight_decay = 1e-2;
    return o;
  }
  AdamW(std::vector<std::shared_ptr<Parameter>> params,
        AdamOptions options = defaults())
      : Adam(std::vector<ParamGroup>{ParamGroup{std::move(params)}}, options,
             /*decoupled=*/true) {}
  AdamW(std::vector<ParamGroup> groups, AdamOptions options = defaults())
      : Adam(std::move(groups), options, /*decoupled=*/true) {}
  AdamW(std::initializer_list<ParamGroup> groups,
        AdamOptions options = defaults())
      : Adam(std::vector<ParamGroup>(groups), options, /*decoupled=*/true) {}
};

} // namespace kiln::optim

namespace kiln::nn::utils {

// torch.nn.utils.clip_grad_norm_: scales the gradients recorded in the
// active trace (call it after backward(), before the optimizer's step) so
// that their global norm is at most max_norm:
//   total = ||(||g_1||, ..., ||g_n||)||  (norm_type 2, or inf: max |g|)
//   g *= min(max_norm / (total + 1e-6), 1)
// It is recorded in the step graph (reductions, then the scale), where
// fuse-optimizer folds the scale into each parameter's update. Returns the
// total norm (realize it with the loss: kiln::realize({loss, norm})).
Tensor clip_grad_norm_(const std::vector<std::shared_ptr<Parameter>> &params,
                       double max_norm, double norm_type = 2.0);

} // namespace kiln::nn::utils
