#include "frontend/optim.h"

#include <cstring>

#include "ir/error.h"

namespace kiln::optim {

Optimizer::Optimizer(std::vector<std::shared_ptr<Parameter>> params, double lr,
                     std::string kind)
    : params_(std::move(params)), lr_(std::make_shared<double>(lr)),
      kind_(std::move(kind)) {
  if (params_.empty())
    fail("{}: no parameters to optimize", kind_);
  if (!(lr >= 0))
    fail("{}: invalid learning rate {}", kind_, lr);
}

void Optimizer::zero_grad() {
  if (auto t = Trace::active())
    for (auto &p : params_)
      t->clear_grad(*p);
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
    std::shared_ptr<double> cell = lr_;
    Tensor lr(
        t, t->lr(lr_.get(), dt, [cell, dt] { return make_scalar(*cell, dt); }));
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
    : Optimizer(std::move(params), options.lr, "sgd"), o_(options) {
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
  if (o_.weight_decay != 0)
    d = d + w * o_.weight_decay;
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
    : Adam(std::move(params), options, /*decoupled=*/false) {}

Adam::Adam(std::vector<std::shared_ptr<Parameter>> params, AdamOptions options,
           bool decoupled)
    : Optimizer(std::move(params), options.lr, decoupled ? "adamw" : "adam"),
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
  if (o_.weight_decay != 0) {
    if (decoupled_)
      param = param * cast(1.0 - lr * o_.weight_decay, dt);
    else
      grad = grad + w * o_.weight_decay;
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
