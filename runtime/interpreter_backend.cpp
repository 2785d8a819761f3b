#include "ir/error.h"
#include "ir/interpreter.h"
#include "runtime/backend.h"

#include <cstring>
#include <mutex>

namespace kiln {

namespace {

struct DeviceStates {
  std::mutex mu;
  std::vector<std::weak_ptr<DeviceState>> states;
  // The live ones (dropping the expired), held while they are used.
  std::vector<std::shared_ptr<DeviceState>> live() {
    std::lock_guard lock(mu);
    std::vector<std::shared_ptr<DeviceState>> out;
    std::vector<std::weak_ptr<DeviceState>> keep;
    for (const auto &w : states)
      if (auto st = w.lock()) {
        out.push_back(std::move(st));
        keep.push_back(w);
      }
    states.swap(keep);
    return out;
  }
};

DeviceStates &device_states() {
  static DeviceStates *d = new DeviceStates; // outlives static destruction
  return *d;
}

} // namespace

void register_device_state(std::weak_ptr<DeviceState> state) {
  DeviceStates &d = device_states();
  std::lock_guard lock(d.mu);
  d.states.push_back(std::move(state));
}

void sync_all_device_state() {
  for (const auto &s : device_states().live())
    s->sync_to_host();
}

void mark_host_modified_everywhere(const Array &a) {
  for (const auto &s : device_states().live())
    s->mark_host_modified(a);
}

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
