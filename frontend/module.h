// nn::Module: the base of every model and layer, as torch.nn.Module.
//
//   struct Net : nn::Module {
//     std::shared_ptr<nn::Linear> fc1, fc2;
//     Net() {   // Module's constructor has run: the C++ super().__init__()
//       fc1 = register_module("fc1", std::make_shared<nn::Linear>(784, 256));
//       fc2 = register_module("fc2", std::make_shared<nn::Linear>(256, 10));
//     }
//     Tensor forward(const Tensor &x) override {
//       return (*fc2)(relu((*fc1)(x)));
//     }
//   };
//
// Registering a sub-module gives it (and its sub-modules, recursively) its
// dotted path, so parameters are named `fc1.weight` and a shape error inside
// fc2 reads `fc2 (Linear): matmul expects [*,256], got [64,128]`.
#pragma once

#include "frontend/parameter.h"
#include "frontend/tensor.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace kiln::nn {

class Module {
public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module &) = delete;
  Module &operator=(const Module &) = delete;

  virtual Tensor forward(const Tensor &x) = 0;
  // Calls forward with the trace's error scope set to this module's
  // "path (Type)".
  Tensor operator()(const Tensor &x);

  std::shared_ptr<Parameter> register_parameter(const std::string &name,
                                                Array value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string &name,
                                     std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

  // Every parameter of this module and its sub-modules, depth first in
  // registration order, each once.
  std::vector<std::shared_ptr<Parameter>> parameters() const;
  std::vector<std::pair<std::string, std::shared_ptr<Parameter>>>
  named_parameters() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>> &
  children() const {
    return children_;
  }

  // Training mode (dropout active) is the default; both apply recursively.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Converts every parameter's value to `dtype` (e.g. f64 for gradient
  // checks).
  void to(DType dtype);

  // Dotted path from the root ("" for the root itself).
  const std::string &path() const { return path_; }
  // The class name without namespaces ("Linear").
  virtual std::string type_name() const;
  // "fc2 (Linear)", or the type name alone for the root.
  std::string scope_name() const;

private:
  void add_child(const std::string &name, std::shared_ptr<Module> child);
  void set_path(const std::string &path);
  std::string qualified(const std::string &name) const {
    return path_.empty() ? name : path_ + "." + name;
  }

  std::string path_;
  bool training_ = true;
  std::vector<std::pair<std::string, std::shared_ptr<Parameter>>> params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// Applies its modules in order; they are named "0", "1", ...
class Sequential : public Module {
public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  void push_back(std::shared_ptr<Module> m);
  size_t size() const { return children().size(); }
  Tensor forward(const Tensor &x) override;
  std::string type_name() const override { return "Sequential"; }
};

} // namespace kiln::nn
