#include "frontend/compile.h"

#include "ir/error.h"
#include "ir/escape.h"
#include "ir/profile.h"

namespace kiln {

Program trace_train_step(nn::Module &model, const LossFn &loss_fn,
                         optim::Optimizer *opt, const Type &x_type,
                         const Type &y_type, TraceStage stage) {
  return trace_train_step(
      {{"x", x_type}, {"y", y_type}},
      [&](const StepInputs &in) { return loss_fn(model(in[0]), in[1]); }, opt,
      stage);
}

const Tensor &StepInputs::operator[](size_t i) const {
  if (i >= tensors_.size())
    fail("step input {} does not exist (the step has {} inputs)", i,
         tensors_.size());
  return tensors_[i];
}

const Tensor &StepInputs::operator[](std::string_view name) const {
  std::string names;
  for (size_t i = 0; i < decl_.size(); ++i) {
    if (decl_[i].name == name)
      return tensors_[i];
    names += (i ? ", " : "") + decl_[i].name;
  }
  fail("step input '{}' is not declared (the step's inputs: {})",
       escape_for_message(std::string(name)), names);
}

Program trace_train_step(const std::vector<StepInput> &inputs,
                         const StepLossFn &loss_fn, optim::Optimizer *opt,
                         TraceStage stage, const StepOptions &options) {
  if (stage == TraceStage::step && !opt)
    fail("trace_train_step: the step stage needs an optimizer");
  if (options.max_grad_norm > 0 && !opt)
    fail("trace_train_step: max_grad_norm needs an optimizer (its "
         "parameters are clipped)");
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string &n = inputs[i].name;
    if (n.empty())
      fail("train step input {} has no name", i);
    if (n == "lr" || n == "seed" || n == "offset" || n.rfind("lr.", 0) == 0)
      fail("train step input '{}': the name is reserved for the step's own "
           "inputs",
           escape_for_message(n));
    for (size_t j = 0; j < i; ++j)
      if (inputs[j].name == n)
        fail("train step input '{}' is declared twice", escape_for_message(n));
  }
  TraceScope scope;
  std::vector<Tensor> tensors;
  // Placeholders: the real batches are bound when the step runs.
  for (const StepInput &in : inputs)
    tensors.push_back(Tensor::from(Array(in.type), in.name));
  if (opt)
    opt->zero_grad();
  Tensor loss = loss_fn(StepInputs(inputs, tensors));
  if (!loss.defined() || loss.rank() != 0 || !is_float(loss.dtype()))
    fail("the loss function must return a float scalar, got {}",
         loss.defined() ? loss.type().str() : "an undefined tensor");
  std::vector<Value *> outputs = {loss.value()};
  if (stage == TraceStage::traced) {
    loss.value()->name = "loss";
    return scope.trace()->finish(outputs, "forward");
  }
  loss.backward();
  if (options.max_grad_norm > 0)
    nn::utils::clip_grad_norm_(opt->params(), options.max_grad_norm);
  if (stage == TraceStage::autodiff) {
    for (auto &p : scope.trace()->params())
      outputs.push_back(p->grad().value());
    return scope.trace()->finish(outputs, "autodiff");
  }
  opt->step();
  return scope.trace()->finish(outputs, "");
}

namespace {

std::vector<StepInput> xy_inputs(const Program &p) {
  int x = p.input_index("x"), y = p.input_index("y");
  if (x < 0 || y < 0)
    fail("a train step needs data inputs named x and y");
  return {{"x", p.graph().inputs()[x].value->type},
          {"y", p.graph().inputs()[y].value->type}};
}

} // namespace

TrainStep::TrainStep(Program program)
    : TrainStep(program, xy_inputs(program)) {}

TrainStep::TrainStep(Program program, std::vector<StepInput> inputs)
    : program_(std::move(program)), inputs_(std::move(inputs)) {
  for (const StepInput &in : inputs_) {
    int i = program_.input_index(in.name);
    if (i < 0)
      fail("the train step graph has no input named '{}'",
           escape_for_message(in.name));
    index_.push_back(i);
  }
}

double TrainStep::operator()(const Array &x, const Array &y) const {
  return (*this)(std::vector<Array>{x, y});
}

double TrainStep::operator()(const std::vector<Array> &inputs) const {
  if (inputs.size() != inputs_.size())
    fail("the train step takes {} inputs, got {}", inputs_.size(),
         inputs.size());
  std::vector<Array> in = program_.gather_inputs();
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].type() != inputs_[i].type)
      fail("train step input '{}' is {}, expected {}",
           escape_for_message(inputs_[i].name), inputs[i].type().str(),
           inputs_[i].type.str());
    in[index_[i]] = inputs[i];
  }
  return program_.run(std::move(in))[0].get(0);
}

double TrainStep::operator()(
    std::initializer_list<std::pair<std::string_view, Array>> inputs) const {
  std::map<std::string, Array> named;
  for (const auto &[name, a] : inputs)
    if (!named.emplace(std::string(name), a).second)
      fail("train step input '{}' is given twice",
           escape_for_message(std::string(name)));
  return run_named(named);
}

double TrainStep::run_named(const std::map<std::string, Array> &inputs) const {
  std::vector<Array> ordered;
  for (const StepInput &in : inputs_) {
    auto it = inputs.find(in.name);
    if (it == inputs.end())
      fail("train step input '{}' is missing", escape_for_message(in.name));
    ordered.push_back(it->second);
  }
  if (inputs.size() != inputs_.size())
    for (const auto &[name, a] : inputs) {
      bool known = false;
      for (const StepInput &in : inputs_)
        known = known || in.name == name;
      if (!known)
        fail("the train step has no input named '{}'",
             escape_for_message(name));
    }
  return (*this)(ordered);
}

TrainStep compile_train_step(nn::Module &model, const LossFn &loss_fn,
                             optim::Optimizer &opt, const Type &x_type,
                             const Type &y_type) {
  profile::Scope scope("trace forward, autodiff and optimizer", "trace");
  return TrainStep(
      trace_train_step(model, loss_fn, &opt, x_type, y_type, TraceStage::step));
}

} // namespace kiln

namespace kiln {

TrainStep compile_train_step(optim::Optimizer &opt,
                             std::vector<StepInput> inputs, StepLossFn loss_fn,
                             const StepOptions &options) {
  profile::Scope scope("trace forward, autodiff and optimizer", "trace");
  Program p =
      trace_train_step(inputs, loss_fn, &opt, TraceStage::step, options);
  return TrainStep(std::move(p), std::move(inputs));
}

} // namespace kiln
