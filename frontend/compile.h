// Compile ahead: trace one training step once and replay it.
//
//   auto step = kiln::compile_train_step(model, nn::cross_entropy, opt,
//                                        {DType::f32, {64, 784}},
//                                        {DType::i32, {64}});
//   for (...) double loss = step(x, y);  // x, y: Arrays of those types
//
// The recorded graph is exactly what the familiar loop
//   opt.zero_grad(); auto loss = loss_fn(model(Tensor::from(x, "x")),
//   Tensor::from(y, "y")); loss.backward(); opt.step(); loss.item();
// records (tested), so both find the same executable in the compile cache.
// Step-graph convention (frontend/trace.h): inputs x, y, lr, [seed, offset],
// params (param), optimizer state (state); outputs loss, then the updated
// params and state, each aliasing its input.
//
// Any number of named inputs: a list of (name, type) and a function of the
// model and the inputs that returns the loss.
//   auto step = kiln::compile_train_step(
//       model, opt,
//       {{"x", {DType::f32, {64, 784}}}, {"mask", {DType::f32, {64, 784}}},
//        {"y", {DType::i32, {64}}}},
//       [](Net &m, const kiln::StepInputs &in) {
//         return nn::cross_entropy(m(in["x"], in["mask"]), in["y"]);
//       });
//   double loss = step({x, mask, y});                       // by position
//   double loss = step({{"x", x}, {"mask", mask}, {"y", y}}); // by name
#pragma once

#include "frontend/module.h"
#include "frontend/optim.h"
#include "frontend/trace.h"

#include <concepts>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

using LossFn =
    std::function<Tensor(const Tensor &output, const Tensor &target)>;

// How far trace_train_step records.
enum class TraceStage {
  traced,   // forward + loss; outputs: loss
  autodiff, // + backward; outputs: loss, d(loss)/d(param) per parameter
  step,     // + optimizer update; outputs: loss, new params, new state
};

// Records one training step of `model` on x: x_type, y: y_type (data inputs
// named "x" and "y") into a fresh trace, up to `stage`, and returns it
// finished but not compiled. `opt` may be null below TraceStage::step.
Program trace_train_step(nn::Module &model, const LossFn &loss_fn,
                         optim::Optimizer *opt, const Type &x_type,
                         const Type &y_type, TraceStage stage);

// A data input of a step: its graph input name and type.
struct StepInput {
  std::string name;
  Type type;
};

// The traced step's inputs, by position (declaration order) or by name.
class StepInputs {
public:
  StepInputs(std::vector<StepInput> decl, std::vector<Tensor> tensors)
      : decl_(std::move(decl)), tensors_(std::move(tensors)) {}
  size_t size() const { return tensors_.size(); }
  const Tensor &operator[](size_t i) const;
  // Throws kiln::Error naming the declared inputs for an unknown name.
  const Tensor &operator[](std::string_view name) const;

private:
  std::vector<StepInput> decl_;
  std::vector<Tensor> tensors_;
};

using StepLossFn = std::function<Tensor(const StepInputs &inputs)>;

struct StepOptions {
  // When > 0, nn::utils::clip_grad_norm_(opt.params(), max_grad_norm) runs
  // between backward and the optimizer step (recorded in the step graph).
  double max_grad_norm = 0;
};

// Records one training step with the data inputs `inputs` (created in this
// order, named as declared) into a fresh trace, up to `stage`.
Program trace_train_step(const std::vector<StepInput> &inputs,
                         const StepLossFn &loss_fn, optim::Optimizer *opt,
                         TraceStage stage, const StepOptions &options = {});

// A compiled training step, replayed with new batches.
class TrainStep {
public:
  // A step with data inputs x and y.
  explicit TrainStep(Program program);
  // A step with the data inputs `inputs` (each must be in the program).
  TrainStep(Program program, std::vector<StepInput> inputs);
  // Runs one step: updates the parameters and optimizer state in place and
  // returns the loss (exact for f32 and f64 models alike). The arrays must
  // have the types given at compile time (kiln::Error otherwise).
  double operator()(const Array &x, const Array &y) const;
  // The inputs by position (the declared order)...
  double operator()(const std::vector<Array> &inputs) const;
  // ... or by name (each declared input exactly once):
  // step({{"x", x}, {"y", y}}).
  double operator()(
      std::initializer_list<std::pair<std::string_view, Array>> inputs) const;
  double run_named(const std::map<std::string, Array> &inputs) const;
  const std::vector<StepInput> &inputs() const { return inputs_; }
  const Graph &graph() const { return program_.graph(); }
  const Program &program() const { return program_; }

private:
  Program program_;
  std::vector<StepInput> inputs_;
  std::vector<int> index_; // graph input index of each of inputs_
};

TrainStep compile_train_step(nn::Module &model, const LossFn &loss_fn,
                             optim::Optimizer &opt, const Type &x_type,
                             const Type &y_type);

// Any number of named inputs; loss_fn computes the loss from them.
TrainStep compile_train_step(optim::Optimizer &opt,
                             std::vector<StepInput> inputs, StepLossFn loss_fn,
                             const StepOptions &options = {});

// The same with the model passed to loss_fn(model, inputs) (the model may be
// a module or a holder; it must outlive the compile call only).
template <typename M, typename F>
requires std::invocable<F &, M &, const StepInputs &>
    TrainStep compile_train_step(M &model, optim::Optimizer &opt,
                                 std::vector<StepInput> inputs, F loss_fn,
                                 const StepOptions &options = {}) {
  return compile_train_step(
      opt, std::move(inputs),
      [&model, &loss_fn](const StepInputs &in) -> Tensor {
        return loss_fn(model, in);
      },
      options);
}

} // namespace kiln
