// nn::Module: the base of every model and layer, as torch.nn.Module, and
// ModuleHolder, the handle a model keeps its layers in, as LibTorch's
// TORCH_MODULE: `nn::Linear` holds a shared `nn::LinearImpl` and is called
// like a function.
//
//   struct NetImpl : nn::Module {
//     nn::Linear fc1{nullptr}, fc2{nullptr};
//     NetImpl() {   // Module's constructor has run: the C++ super().__init__()
//       fc1 = register_module("fc1", nn::Linear(784, 256));
//       fc2 = register_module("fc2", nn::Linear(256, 10));
//     }
//     Tensor forward(const Tensor &x) override { return fc2(relu(fc1(x))); }
//   };
//   KILN_MODULE(Net); // nn-style holder: Net net; net(x); net->parameters()
//
// Registering a sub-module gives it (and its sub-modules, recursively) its
// dotted path, so parameters are named `fc1.weight` and a shape error inside
// fc2 reads `fc2 (Linear): matmul expects [*,256], got [64,128]`.
//
// forward may take any number of inputs (`Tensor forward(const Tensor &x,
// const Tensor &mask)`); a holder's operator() calls whichever forward the
// arguments select. Module's one-input forward is virtual (Sequential and
// compile_train_step call it through a Module&); a module without one
// throws when it is called that way. (clang's -Woverloaded-virtual flags a
// forward of another arity as hiding the virtual one: add
// `using nn::Module::forward;` to the class.)
#pragma once

#include "frontend/parameter.h"
#include "frontend/tensor.h"

#include <concepts>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace kiln::nn {

template <typename T> class ModuleHolder;

class Module {
public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module &) = delete;
  Module &operator=(const Module &) = delete;

  // The one-input forward. Not pure, so that a module may declare a forward
  // of another arity instead; calling this one then throws kiln::Error.
  virtual Tensor forward(const Tensor &x);
  // Calls forward with the trace's error scope set to this module's
  // "path (Type)". (A holder's operator() calls a forward of any arity.)
  Tensor operator()(const Tensor &x);

  std::shared_ptr<Parameter> register_parameter(const std::string &name,
                                                Array value);
  // A tensor that is part of the module's state but not trained (running
  // statistics): saved in checkpoints, and a `state` input of a step graph
  // that Buffer::assign updates in place.
  std::shared_ptr<Buffer> register_buffer(const std::string &name, Array value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string &name,
                                     std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }
  // The pre-holder style, `std::shared_ptr<nn::Linear> fc1 =
  // register_module("fc1", std::make_shared<nn::Linear>(784, 256));` then
  // `(*fc1)(x)`, keeps working: a shared holder registers its module.
  template <typename H>
  requires std::is_base_of_v<ModuleHolder<typename H::Impl>, H>
      std::shared_ptr<H> register_module(const std::string &name,
                                         std::shared_ptr<H> module) {
    if (!module)
      add_child(name, nullptr);
    add_child(name, module->ptr());
    return module;
  }
  // A holder (nn::Linear) is returned as the holder type given.
  template <typename H>
  requires std::is_base_of_v<ModuleHolder<typename H::Impl>, H>
      H register_module(const std::string &name, H module) {
    add_child(name, module.ptr());
    return module;
  }

  // Every parameter of this module and its sub-modules, depth first in
  // registration order, each once.
  std::vector<std::shared_ptr<Parameter>> parameters() const;
  std::vector<std::pair<std::string, std::shared_ptr<Parameter>>>
  named_parameters() const;
  // The same for buffers (named by their dotted path from the root).
  std::vector<std::shared_ptr<Buffer>> buffers() const;
  std::vector<std::pair<std::string, std::shared_ptr<Buffer>>>
  named_buffers() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>> &
  children() const {
    return children_;
  }
  // This module (named "") and every sub-module, depth first in
  // registration order, named by their dotted path relative to this module
  // (torch's named_modules). The pointers live as long as the tree.
  std::vector<std::pair<std::string, Module *>> named_modules();
  std::vector<Module *> modules();

  // Drops (set_to_none) or zeroes the gradients of this module's
  // parameters in the active trace; see optim::Optimizer::zero_grad.
  void zero_grad(bool set_to_none = true);

  // Training mode (dropout active) is the default; both apply recursively.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Converts every parameter's (and float buffer's) value to `dtype` (e.g.
  // f64 for gradient checks).
  void to(DType dtype);

  // Dotted path from the root ("" for the root itself).
  const std::string &path() const { return path_; }
  // The class name without namespaces and without a trailing "Impl"
  // ("Linear" for LinearImpl).
  virtual std::string type_name() const;
  // "fc2 (Linear)", or the type name alone for the root.
  std::string scope_name() const;

  // Sets the trace's error scope to `m`'s scope_name() for its lifetime,
  // after checking that every Tensor among a call's arguments is defined
  // (a holder's operator() uses it around forward).
  class CallScope {
  public:
    CallScope(const Module &m, std::initializer_list<const Tensor *> inputs);
    ~CallScope();
    CallScope(const CallScope &) = delete;
    CallScope &operator=(const CallScope &) = delete;

  private:
    std::shared_ptr<Trace> trace_;
    std::string saved_;
  };

private:
  void add_child(const std::string &name, std::shared_ptr<Module> child);
  void set_path(const std::string &path);
  std::string qualified(const std::string &name) const {
    return path_.empty() ? name : path_ + "." + name;
  }

  std::string path_;
  bool training_ = true;
  std::vector<std::pair<std::string, std::shared_ptr<Parameter>>> params_;
  std::vector<std::pair<std::string, std::shared_ptr<Buffer>>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

namespace detail {
template <typename A> const Tensor *tensor_arg(const A &a) {
  if constexpr (std::is_same_v<std::remove_cvref_t<A>, Tensor>)
    return &a;
  else
    return nullptr;
}
template <typename> struct is_shared_ptr : std::false_type {};
template <typename U>
struct is_shared_ptr<std::shared_ptr<U>> : std::true_type {};
} // namespace detail

// Calls m.forward(args...) (any arity, any result) within m's error scope.
template <typename M, typename... Args>
decltype(auto) call(M &m, Args &&...args) {
  Module::CallScope scope(m, {detail::tensor_arg(args)...});
  return m.forward(std::forward<Args>(args)...);
}

// A shared handle to a module of type T, called like a function (LibTorch's
// ModuleHolder). Copies share the module. `Holder h{nullptr}` is empty until
// assigned; a holder of a default-constructible module default-constructs
// it. Converts to std::shared_ptr<T> (and to a shared_ptr of a base), so it
// goes wherever a module pointer does (Sequential, register_module).
template <typename T> class ModuleHolder {
public:
  using Impl = T;

  ModuleHolder() requires std::is_default_constructible_v<T>
      : impl_(std::make_shared<T>()) {}
  ModuleHolder(std::nullptr_t) {}
  template <typename U>
  requires std::is_convertible_v<U *, T *> ModuleHolder(std::shared_ptr<U> impl)
      : impl_(std::move(impl)) {}
  // Constructs the module from its constructor's arguments:
  // nn::Linear(784, 256).
  template <typename A0, typename... A>
  requires(!std::is_same_v<std::remove_cvref_t<A0>, ModuleHolder> &&
           !std::is_same_v<std::remove_cvref_t<A0>, std::nullptr_t> &&
           !detail::is_shared_ptr<std::remove_cvref_t<A0>>::value &&
           std::is_constructible_v<T, A0, A...>) explicit(sizeof...(A) == 0)
      ModuleHolder(A0 &&a0, A &&...a)
      : impl_(
            std::make_shared<T>(std::forward<A0>(a0), std::forward<A>(a)...)) {}

  T *operator->() const { return &**this; }
  T &operator*() const {
    if (!impl_)
      empty_error();
    return *impl_;
  }
  T *get() const { return impl_.get(); }
  const std::shared_ptr<T> &ptr() const { return impl_; }
  bool is_empty() const { return !impl_; }
  explicit operator bool() const { return impl_ != nullptr; }
  template <typename U>
  requires std::is_convertible_v<T *, U *>
  operator std::shared_ptr<U>() const { return impl_; }

  // forward(args...) of the module, in its error scope.
  template <typename... Args> decltype(auto) operator()(Args &&...args) const {
    return call(**this, std::forward<Args>(args)...);
  }

private:
  [[noreturn]] static void empty_error();
  std::shared_ptr<T> impl_;
};

[[noreturn]] void throw_empty_holder(const std::string &type);

template <typename T> void ModuleHolder<T>::empty_error() {
  throw_empty_holder(typeid(T).name());
}

// Declares `Name` as the holder of `NameImpl` (TORCH_MODULE).
#define KILN_MODULE(Name)                                                      \
  class Name : public ::kiln::nn::ModuleHolder<Name##Impl> {                   \
  public:                                                                      \
    using ::kiln::nn::ModuleHolder<Name##Impl>::ModuleHolder;                  \
  }

// Applies its modules in order; they are named "0", "1", ...
class SequentialImpl : public Module {
public:
  SequentialImpl() = default;
  SequentialImpl(std::initializer_list<std::shared_ptr<Module>> modules);
  // nn::Sequential(nn::Linear(4, 3), nn::ReLU(), nn::Linear(3, 2))
  template <typename... M>
  requires(sizeof...(M) > 0 &&
           (std::is_convertible_v<M, std::shared_ptr<Module>> &&
            ...)) explicit SequentialImpl(M &&...modules) {
    (push_back(std::shared_ptr<Module>(std::forward<M>(modules))), ...);
  }
  void push_back(std::shared_ptr<Module> m);
  size_t size() const { return children().size(); }
  Tensor forward(const Tensor &x) override;
  std::string type_name() const override { return "Sequential"; }
};
KILN_MODULE(Sequential);

} // namespace kiln::nn
