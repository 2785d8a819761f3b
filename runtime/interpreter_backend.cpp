#include "ir/error.h"
#include "ir/interpreter.h"
#include "runtime/backend.h"

#include <cstring>

namespace kiln {

void check_inputs(const Graph &g, std::span<const Array> inputs) {
  if (inputs.size() != g.inputs().size())
    fail("graph @{} takes {} inputs, got {}", g.name, g.inputs().size(),
         inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Value *v = g.inputs()[i].value;
    if (inputs[i].type() != v->type)
      fail("input %{} of @{} must be {}, got {}", v->name, g.name,
           v->type.str(), inputs[i].type().str());
    if (!g.inputs()[i].range)
      continue;
    for (int64_t k = 0; k < inputs[i].numel(); ++k)
      check_input_element(g, i, k,
                          v->type.dtype == DType::i32
                              ? int64_t{inputs[i].as<int32_t>()[k]}
                              : inputs[i].as<int64_t>()[k]);
  }
}

namespace {

class InterpreterExecutable : public Executable {
public:
  explicit InterpreterExecutable(const Graph &g) : g_(g.clone()) {}

  std::vector<Array> run(std::span<Array> inputs) override {
    check_inputs(*g_, inputs);
    std::vector<HostTensor> in;
    for (const Array &a : inputs)
      in.push_back(a.to_host());
    std::vector<HostTensor> out = interpret(*g_, in);
    std::vector<Array> result;
    for (size_t i = 0; i < out.size(); ++i) {
      int alias = g_->outputs[i].alias;
      if (alias < 0) {
        result.push_back(Array::from_host(out[i]));
        continue;
      }
      Array &target = inputs[alias];
      Array fresh = Array::from_host(out[i]);
      std::memcpy(target.data(), fresh.data(), fresh.bytes());
      result.push_back(target);
    }
    return result;
  }

private:
  std::unique_ptr<Graph> g_;
};

class InterpreterBackend : public Backend {
public:
  std::string_view name() const override { return "interpreter"; }
  std::unique_ptr<Executable> compile(const Graph &g) override {
    return std::make_unique<InterpreterExecutable>(g);
  }
};

} // namespace

std::unique_ptr<Backend> make_interpreter_backend() {
  return std::make_unique<InterpreterBackend>();
}

} // namespace kiln
