#include "frontend/module.h"

#include "ir/error.h"

#include <cxxabi.h>
#include <typeinfo>
#include <unordered_set>

namespace kiln::nn {

Tensor Module::operator()(const Tensor &x) {
  if (!x.defined())
    fail("{}: called with an undefined tensor", scope_name());
  Builder &b = x.trace().builder();
  // Restores the caller's scope also when forward throws, so an error in a
  // sub-module does not leave the parent's scope wrong for later ops.
  struct Restore {
    Builder &b;
    std::string saved;
    ~Restore() { b.set_scope(std::move(saved)); }
  } restore{b, b.scope()};
  b.set_scope(scope_name());
  return forward(x);
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
  }
  return name;
}

std::string Module::scope_name() const {
  return path_.empty() ? type_name() : path_ + " (" + type_name() + ")";
}

Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (auto &m : modules)
    push_back(m);
}

void Sequential::push_back(std::shared_ptr<Module> m) {
  register_module(std::to_string(size()), std::move(m));
}

Tensor Sequential::forward(const Tensor &x) {
  Tensor h = x;
  for (auto &[n, c] : children())
    h = (*c)(h);
  return h;
}

} // namespace kiln::nn
