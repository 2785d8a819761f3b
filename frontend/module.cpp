#include "frontend/module.h"

#include "ir/error.h"

#include <cxxabi.h>
#include <typeinfo>
#include <unordered_set>

namespace kiln::nn {

Tensor Module::forward(const Tensor &) {
  fail("{}: has no forward taking one tensor (call it with the inputs its "
       "forward takes)",
       scope_name());
}

Tensor Module::operator()(const Tensor &x) {
  CallScope scope(*this, {&x});
  return forward(x);
}

// Restores the caller's scope also when forward throws, so an error in a
// sub-module does not leave the parent's scope wrong for later ops.
Module::CallScope::CallScope(const Module &m,
                             std::initializer_list<const Tensor *> inputs) {
  size_t i = 0;
  for (const Tensor *t : inputs) {
    ++i;
    if (!t)
      continue;
    if (!t->defined()) {
      if (inputs.size() == 1)
        fail("{}: called with an undefined tensor", m.scope_name());
      fail("{}: called with an undefined tensor (argument {})", m.scope_name(),
           i);
    }
    if (!trace_)
      trace_ = t->trace_ptr();
  }
  if (!trace_)
    trace_ = Trace::current();
  saved_ = trace_->builder().scope();
  trace_->builder().set_scope(m.scope_name());
}

Module::CallScope::~CallScope() {
  trace_->builder().set_scope(std::move(saved_));
}

void throw_empty_holder(const std::string &type) {
  int status = 0;
  char *d = abi::__cxa_demangle(type.c_str(), nullptr, nullptr, &status);
  std::string name = status == 0 && d ? d : type;
  std::free(d);
  fail("calling an empty module holder of {} (construct the module, or "
       "assign register_module's result to it, before using it)",
       name);
}

std::shared_ptr<Parameter> Module::register_parameter(const std::string &name,
                                                      Array value) {
  for (auto &[n, p] : params_)
    if (n == name)
      fail("{}: parameter '{}' is already registered", scope_name(), name);
  auto p = std::make_shared<Parameter>(qualified(name), std::move(value));
  params_.emplace_back(name, p);
  return p;
}

std::shared_ptr<Buffer> Module::register_buffer(const std::string &name,
                                                Array value) {
  for (auto &[n, b] : buffers_)
    if (n == name)
      fail("{}: buffer '{}' is already registered", scope_name(), name);
  for (auto &[n, p] : params_)
    if (n == name)
      fail("{}: buffer '{}' has the name of a parameter", scope_name(), name);
  auto b = std::make_shared<Buffer>(qualified(name), std::move(value));
  buffers_.emplace_back(name, b);
  return b;
}

void Module::add_child(const std::string &name, std::shared_ptr<Module> child) {
  if (!child)
    fail("{}: sub-module '{}' is null", scope_name(), name);
  for (auto &[n, c] : children_)
    if (n == name)
      fail("{}: sub-module '{}' is already registered", scope_name(), name);
  child->set_path(qualified(name));
  children_.emplace_back(name, std::move(child));
}

void Module::set_path(const std::string &path) {
  path_ = path;
  for (auto &[n, p] : params_)
    p->set_name(qualified(n));
  for (auto &[n, b] : buffers_)
    b->set_name(qualified(n));
  for (auto &[n, c] : children_)
    c->set_path(qualified(n));
}

std::vector<std::pair<std::string, std::shared_ptr<Parameter>>>
Module::named_parameters() const {
  std::vector<std::pair<std::string, std::shared_ptr<Parameter>>> out;
  std::unordered_set<const Parameter *> seen;
  auto walk = [&](const Module &m, auto &self) -> void {
    for (auto &[n, p] : m.params_)
      if (seen.insert(p.get()).second)
        out.emplace_back(p->name(), p);
    for (auto &[n, c] : m.children_)
      self(*c, self);
  };
  walk(*this, walk);
  return out;
}

std::vector<std::shared_ptr<Parameter>> Module::parameters() const {
  std::vector<std::shared_ptr<Parameter>> out;
  for (auto &[n, p] : named_parameters())
    out.push_back(p);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Buffer>>>
Module::named_buffers() const {
  std::vector<std::pair<std::string, std::shared_ptr<Buffer>>> out;
  std::unordered_set<const Buffer *> seen;
  auto walk = [&](const Module &m, auto &self) -> void {
    for (auto &[n, b] : m.buffers_)
      if (seen.insert(b.get()).second)
        out.emplace_back(b->name(), b);
    for (auto &[n, c] : m.children_)
      self(*c, self);
  };
  walk(*this, walk);
  return out;
}

std::vector<std::shared_ptr<Buffer>> Module::buffers() const {
  std::vector<std::shared_ptr<Buffer>> out;
  for (auto &[n, b] : named_buffers())
    out.push_back(b);
  return out;
}

std::vector<std::pair<std::string, Module *>> Module::named_modules() {
  std::vector<std::pair<std::string, Module *>> out;
  std::unordered_set<const Module *> seen;
  auto walk = [&](Module &m, const std::string &prefix, auto &self) -> void {
    if (!seen.insert(&m).second)
      return;
    out.emplace_back(prefix, &m);
    for (auto &[n, c] : m.children_)
      self(*c, prefix.empty() ? n : prefix + "." + n, self);
  };
  walk(*this, "", walk);
  return out;
}

std::vector<Module *> Module::modules() {
  std::vector<Module *> out;
  for (auto &[n, m] : named_modules())
    out.push_back(m);
  return out;
}

void Module::zero_grad(bool set_to_none) {
  zero_grads(parameters(), set_to_none);
}

void Module::train(bool on) {
  training_ = on;
  for (auto &[n, c] : children_)
    c->train(on);
}

void Module::to(DType dtype) {
  for (auto &p : parameters()) {
    if (p->type().dtype == dtype)
      continue;
    Array a(Type{dtype, p->type().shape});
    for (int64_t i = 0; i < a.numel(); ++i)
      a.set(i, p->value().get(i));
    p->value() = a;
  }
  for (auto &b : buffers()) {
    if (!is_float(b->type().dtype) || b->type().dtype == dtype)
      continue;
    Array a(Type{dtype, b->type().shape});
    for (int64_t i = 0; i < a.numel(); ++i)
      a.set(i, b->value().get(i));
    b->value() = a;
  }
}

std::string Module::type_name() const {
  int status = 0;
  const char *mangled = typeid(*this).name();
  char *d = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string name = status == 0 && d ? d : mangled;
  std::free(d);
  if (name.find('<') == std::string::npos) {
    size_t colon = name.rfind("::");
    if (colon != std::string::npos)
      name = name.substr(colon + 2);
    // NetImpl is what the holder Net (KILN_MODULE) holds: named Net.
    if (name.size() > 4 && name.ends_with("Impl"))
      name.resize(name.size() - 4);
  }
  return name;
}

std::string Module::scope_name() const {
  return path_.empty() ? type_name() : path_ + " (" + type_name() + ")";
}

SequentialImpl::SequentialImpl(
    std::initializer_list<std::shared_ptr<Module>> modules) {
  for (auto &m : modules)
    push_back(m);
}

void SequentialImpl::push_back(std::shared_ptr<Module> m) {
  register_module(std::to_string(size()), std::move(m));
}

Tensor SequentialImpl::forward(const Tensor &x) {
  Tensor h = x;
  for (auto &[n, c] : children())
    h = (*c)(h);
  return h;
}

} // namespace kiln::nn
