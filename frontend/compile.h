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
#pragma once

#include "frontend/module.h"
#include "frontend/optim.h"
#include "frontend/trace.h"

#include <functional>

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

// A compiled training step, replayed with new batches.
class TrainStep {
public:
  explicit TrainStep(Program program);
  // Runs one step: updates the parameters and optimizer state in place and
  // returns the loss (exact for f32 and f64 models alike). x and y must have
  // the types given at compile time.
  double operator()(const Array &x, const Array &y) const;
  const Graph &graph() const { return program_.graph(); }
  const Program &program() const { return program_; }

private:
  Program program_;
  int x_, y_;
};

TrainStep compile_train_step(nn::Module &model, const LossFn &loss_fn,
                             optim::Optimizer &opt, const Type &x_type,
                             const Type &y_type);

} // namespace kiln
