#include "frontend/compile.h"

#include "ir/error.h"
#include "ir/profile.h"

namespace kiln {

Program trace_train_step(nn::Module &model, const LossFn &loss_fn,
                         optim::Optimizer *opt, const Type &x_type,
                         const Type &y_type, TraceStage stage) {
  if (stage == TraceStage::step && !opt)
    fail("trace_train_step: the step stage needs an optimizer");
  TraceScope scope;
  // Placeholders: the real batches are bound when the step runs.
  Tensor x = Tensor::from(Array(x_type), "x");
  Tensor y = Tensor::from(Array(y_type), "y");
  if (opt)
    opt->zero_grad();
  Tensor loss = loss_fn(model(x), y);
  if (loss.rank() != 0 || !is_float(loss.dtype()))
    fail("the loss function must return a float scalar, got {}",
         loss.type().str());
  std::vector<Value *> outputs = {loss.value()};
  if (stage == TraceStage::traced) {
    loss.value()->name = "loss";
    return scope.trace()->finish(outputs, "forward");
  }
  loss.backward();
  if (stage == TraceStage::autodiff) {
    for (auto &p : scope.trace()->params())
      outputs.push_back(p->grad().value());
    return scope.trace()->finish(outputs, "autodiff");
  }
  opt->step();
  return scope.trace()->finish(outputs, "");
}

TrainStep::TrainStep(Program program) : program_(std::move(program)) {
  x_ = program_.input_index("x");
  y_ = program_.input_index("y");
  if (x_ < 0 || y_ < 0)
    fail("a train step needs data inputs named x and y");
}

double TrainStep::operator()(const Array &x, const Array &y) const {
  std::vector<Array> in = program_.gather_inputs();
  in[x_] = x;
  in[y_] = y;
  return program_.run(std::move(in))[0].get(0);
}

TrainStep compile_train_step(nn::Module &model, const LossFn &loss_fn,
                             optim::Optimizer &opt, const Type &x_type,
                             const Type &y_type) {
  profile::Scope scope("trace forward, autodiff and optimizer", "trace");
  return TrainStep(
      trace_train_step(model, loss_fn, &opt, x_type, y_type, TraceStage::step));
}

} // namespace kiln
