#include "frontend/optim.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "ir/error.h"

namespace kiln::optim {

Optimizer::Optimizer(std::vector<ParamGroup> groups, double lr,
                     double weight_decay, std::string kind)
    : lr_(lr), kind_(std::move(kind)) {
  if (!(lr >= 0))
    fail("{}: invalid learning rate {}", kind_, lr);
  for (size_t i = 0; i < groups.size(); ++i) {
    ParamGroup &pg = groups[i];
    double glr = pg.options.lr.value_or(lr);
    double wd = pg.options.weight_decay.value_or(weight_decay);
    if (!(glr >= 0))
      fail("{}: invalid learning rate {} in parameter group {}", kind_, glr, i);
    if (!(wd >= 0))
      fail("{}: weight_decay must be >= 0, got {} in parameter group {}", kind_,
           wd, i);
    for (const auto &p : pg.params) {
      if (!p)
        fail("{}: parameter group {} holds a null parameter", kind_, i);
      auto [it, fresh] = group_of_.emplace(p.get(), groups_.size());
      if (!fresh)
        fail("{}: parameter '{}' is in more than one parameter group "
             "(or twice in one)",
             kind_, p->name());
      params_.push_back(p);
    }
    double ratio = !pg.options.lr || lr == 0 ? 1.0 : glr / lr;
    groups_.push_back(
        {std::move(pg.params), std::make_shared<double>(glr), ratio, wd});
  }
  if (params_.empty())
    fail("{}: no parameters to optimize", kind_);
}

void Optimizer::set_lr(double lr) {
  lr_ = lr;
  for (Group &g : groups_)
    *g.lr = lr * g.lr_ratio;
}

void Optimizer::set_group_lr(size_t group, double lr) {
  if (group >= groups_.size())
    fail("{}: no parameter group {} (it has {})", kind_, group, groups_.size());
  if (!(lr >= 0))
    fail("{}: invalid learning rate {}", kind_, lr);
  *groups_[group].lr = lr;
}

double Optimizer::weight_decay(const Parameter &p) const {
  return groups_[group_of_.at(&p)].weight_decay;
}

void Optimizer::zero_grad(bool set_to_none) {
  zero_grads(params_, set_to_none);
}

void Optimizer::step() {
  auto t = Trace::active();
  if (!t)
    return;
  std::vector<Parameter *> with_grad;
  for (auto &p : params_)
    if (t->grad(*p))
      with_grad.push_back(p.get());
  if (with_grad.empty())
    return;
  // The update is optimizer code, not part of any module.
  std::string scope = t->builder().scope();
  t->builder().set_scope(kind_);
  begin_step(with_grad[0]->type().dtype);
  for (Parameter *p : with_grad) {
    DType dt = lr_dtype(p->type().dtype);
    size_t gi = group_of_.at(p);
    std::shared_ptr<double> cell = groups_[gi].lr;
    Value *lr_in =
        t->lr(cell.get(), dt, [cell, dt] { return make_scalar(*cell, dt); });
    if (gi > 0)
      lr_in->name = "lr." + std::to_string(gi);
    Tensor lr(t, lr_in);
    Tensor w(t, t->param(p->shared_from_this()));
    Tensor g(t, t->grad(*p));
    t->assign_param(*p, update(*p, w, g, lr).value());
  }
  end_step();
  t->builder().set_scope(scope);
}

Array &Optimizer::buffer(const Parameter *p, const std::string &slot,
                         const Type &type) {
  auto key = std::make_pair(p, slot);
  auto it = state_.find(key);
  if (it == state_.end())
    it = state_.emplace(key, Array(type)).first;
  return it->second;
}

const Array *Optimizer::state(const Parameter &p,
                              const std::string &slot) const {
  auto it = state_.find({&p, slot});
  return it == state_.end() ? nullptr : &it->second;
}

std::map<std::string, Array *> Optimizer::named_state() {
  std::map<std::string, Array *> out;
  for (auto &[key, array] : state_)
    out[(key.first ? key.first->name() : kind_) + "." + key.second] = &array;
  return out;
}

std::pair<const Parameter *, std::string>
Optimizer::resolve_state(const std::string &name) const {
  const Parameter *owner = nullptr;
  std::string slot;
  for (const auto &p : params_)
    if (name.size() > p->name().size() + 1 &&
        name.compare(0, p->name().size() + 1, p->name() + ".") == 0 &&
        (!owner || p->name().size() > owner->name().size())) {
      owner = p.get();
      slot = name.substr(p->name().size() + 1);
    }
  if (!owner) {
    if (name.compare(0, kind_.size() + 1, kind_ + ".") != 0)
      fail("optimizer state '{}' belongs to no parameter of this {} "
           "optimizer",
           name, kind_);
    slot = name.substr(kind_.size() + 1);
  }
  return {owner, slot};
}

void Optimizer::check_state(const std::string &name, const Type &type) const {
  auto [owner, slot] = resolve_state(name);
  auto it = state_.find({owner, slot});
  const Type *want = owner                ? &owner->type()
                     : it != state_.end() ? &it->second.type()
                                          : nullptr;
  if (want && type != *want)
    fail("optimizer state '{}' is {}, expected {}", name, type.str(),
         want->str());
  if (!owner && type.rank() != 0)
    fail("optimizer state '{}' is {}, expected a scalar", name, type.str());
}

std::map<std::string, Type> Optimizer::expected_state() const {
  std::map<std::string, Type> out;
  for (const auto &p : params_)
    for (const std::string &slot : param_slots())
      out.emplace(p->name() + "." + slot, p->type());
  for (const std::string &slot : shared_slots()) {
    // A shared slot takes the dtype of the first parameter stepped (see
    // step()); before it exists, the first parameter's.
    auto it = state_.find({nullptr, slot});
    out.emplace(kind_ + "." + slot, it != state_.end()
                                        ? it->second.type()
                                        : Type{params_[0]->type().dtype, {}});
  }
  return out;
}

void Optimizer::load_state(const std::string &name, const Array &value) {
  check_state(name, value.type());
  auto [owner, slot] = resolve_state(name);
  Array &a = buffer(owner, slot, value.type());
  std::memcpy(a.data(), value.data(), value.bytes());
}

Tensor Optimizer::state_tensor(Parameter &p, const std::string &slot) {
  auto t = Trace::current();
  Array &a = buffer(&p, slot, p.type());
  return Tensor(t, t->state(a, p.name() + "." + slot));
}

void Optimizer::assign_state(Parameter &p, const std::string &slot,
                             const Tensor &v) {
  v.trace().assign_state(buffer(&p, slot, p.type()), v.value());
}

Tensor Optimizer::shared_state(const std::string &slot, DType dtype) {
  auto t = Trace::current();
  Array &a = buffer(nullptr, slot, Type{dtype, {}});
  return Tensor(t, t->state(a, kind_ + "." + slot));
}

void Optimizer::assign_shared(const std::string &slot, const Tensor &v) {
  v.trace().assign_state(buffer(nullptr, slot, v.type()), v.value());
}

// ---- SGD
// ----------------------------------------------------------------------

SGD::SGD(std::vector<std::shared_ptr<Parameter>> params, SGDOptions options)
    : SGD(std::vector<ParamGroup>{ParamGroup{std::move(params)}}, options) {}

SGD::SGD(std::vector<ParamGroup> groups, SGDOptions options)
    : Optimizer(std::move(groups), options.lr, options.weight_decay, "sgd"),
      o_(options) {
  if (o_.momentum < 0 || o_.weight_decay < 0)
    fail("sgd: momentum and weight_decay must be >= 0");
  if (o_.nesterov && (o_.momentum <= 0 || o_.dampening != 0))
    fail("sgd: nesterov momentum requires a momentum and zero dampening");
}

std::vector<std::string> SGD::param_slots() const {
  if (o_.momentum == 0)
    return {};
  return {"momentum_buffer"};
}

std::vector<std::string> SGD::shared_slots() const {
  if (o_.momentum == 0 || o_.dampening == 0)
    return {};
  return {"step"};
}

void SGD::begin_step(DType dtype) {
  first_ = Tensor();
  if (o_.momentum == 0 || o_.dampening == 0)
    return;
  Tensor step = shared_state("step", dtype);
  first_ = eq(step, scalar_like(step, 0));
  assign_shared("step", step + 1.0);
}

Tensor SGD::update(Parameter &p, const Tensor &w, const Tensor &g,
                   const Tensor &lr) {
  Tensor d = g;
  if (double wd = weight_decay(p); wd != 0)
    d = d + w * wd;
  if (o_.momentum != 0) {
    Tensor buf = state_tensor(p, "momentum_buffer");
    Tensor next;
    if (o_.dampening == 0) {
      next = buf * o_.momentum + d;
    } else {
      Tensor damped = buf * o_.momentum + d * (1 - o_.dampening);
      next = where(first_, d, damped);
    }
    assign_state(p, "momentum_buffer", next);
    d = o_.nesterov ? d + next * o_.momentum : next;
  }
  return w - lr * d;
}

// ---- Adam / AdamW
// ---------------------------------------------------------------

Adam::Adam(std::vector<std::shared_ptr<Parameter>> params, AdamOptions options)
    : Adam(std::vector<ParamGroup>{ParamGroup{std::move(params)}}, options,
           /*decoupled=*/false) {}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options)
    : Adam(std::move(groups), options, /*decoupled=*/false) {}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options, bool decoupled)
    : Optimizer(std::move(groups), options.lr, options.weight_decay,
                decoupled ? "adamw" : "adam"),
      o_(options), decoupled_(decoupled) {
  if (!(o_.beta1 >= 0 && o_.beta1 < 1 && o_.beta2 >= 0 && o_.beta2 < 1))
    fail("{}: betas must be in [0, 1), got ({}, {})",
         decoupled ? "adamw" : "adam", o_.beta1, o_.beta2);
  if (o_.eps < 0 || o_.weight_decay < 0)
    fail("{}: eps and weight_decay must be >= 0", decoupled ? "adamw" : "adam");
}

void Adam::begin_step(DType dtype) {
  Tensor step = shared_state("step", dtype) + 1.0;
  assign_shared("step", step);
  // The bias corrections depend on the step count only: computed once per
  // step in the graph (not baked), so every step runs the same graph; in
  // f64 whatever the parameters' dtype (see the class comment).
  Tensor t = cast(step, DType::f64);
  bc1_ = 1.0 - pow(scalar_like(t, o_.beta1), t);
  bc2_sqrt_ = sqrt(1.0 - pow(scalar_like(t, o_.beta2), t));
}

Tensor Adam::update(Parameter &p, const Tensor &w, const Tensor &g,
                    const Tensor &lr) {
  // lr is f64 (lr_dtype): every scalar factor is formed in f64 and cast.
  DType dt = w.dtype();
  Tensor grad = g, param = w;
  if (double wd = weight_decay(p); wd != 0) {
    if (decoupled_)
      param = param * cast(1.0 - lr * wd, dt);
    else
      grad = grad + w * wd;
  }
  Tensor m = state_tensor(p, "exp_avg");
  Tensor v = state_tensor(p, "exp_avg_sq");
  // torch's lerp(m, g, wt): m + wt (g - m) for wt < 0.5, else
  // g - (g - m)(1 - wt); wt is a constant, so pick the branch here.
  double wt = 1 - o_.beta1;
  Tensor m_next = wt < 0.5 ? m + (grad - m) * wt : grad - (grad - m) * (1 - wt);
  Tensor v_next = v * o_.beta2 + grad * grad * (1 - o_.beta2);
  assign_state(p, "exp_avg", m_next);
  assign_state(p, "exp_avg_sq", v_next);
  Tensor step_size = cast(lr / bc1_, dt);
  Tensor denom = sqrt(v_next) / cast(bc2_sqrt_, dt) + o_.eps;
  return param - step_size * (m_next / denom);
}

} // namespace kiln::optim

namespace kiln::nn::utils {

Tensor clip_grad_norm_(const std::vector<std::shared_ptr<Parameter>> &params,
                       double max_norm, double norm_type) {
  if (!(max_norm >= 0) || std::isinf(max_norm))
    fail("clip_grad_norm_: max_norm must be finite and >= 0, got {}", max_norm);
  bool inf = std::isinf(norm_type) && norm_type > 0;
  if (!inf && norm_type != 2)
    fail("clip_grad_norm_: norm_type must be 2 or infinity, got {}", norm_type);
  auto t = Trace::active();
  std::vector<Parameter *> with_grad;
  if (t)
    for (const auto &p : params)
      if (p && t->grad(*p))
        with_grad.push_back(p.get());
  if (with_grad.empty())
    fail("clip_grad_norm_: none of the {} parameters has a gradient in the "
         "active trace (call it after backward() and before the optimizer's "
         "step())",
         params.size());
  std::string scope = t->builder().scope();
  t->builder().set_scope("clip_grad_norm_");
  // The norm in the first gradient's dtype (as torch, which stacks the
  // per-parameter norms).
  DType dt = t->grad(*with_grad[0])->type.dtype;
  Tensor total;
  for (Parameter *p : with_grad) {
    Tensor g(t, t->grad(*p));
    if (g.dtype() != dt)
      g = cast(g, dt);
    Tensor part = inf ? amax(abs(g)) : sum(g * g);
    total = !total.defined() ? part : inf ? maximum(total, part) : total + part;
  }
  if (!inf)
    total = sqrt(total);
  Tensor coef = minimum(scalar_like(total, max_norm) / (total + 1e-6),
                        scalar_like(total, 1.0));
  for (Parameter *p : with_grad) {
    Tensor g(t, t->grad(*p));
    Tensor c = g.dtype() == dt ? coef : cast(coef, g.dtype());
    t->set_grad(*p, (g * c).value());
  }
  t->builder().set_scope(scope);
  return total;
}

} // namespace kiln::nn::utils
