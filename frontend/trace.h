// Trace: the graph being recorded while model code runs, and Program: a
// finished trace ready to run.
//
// Every Tensor operation appends a node to the active trace through its
// Builder. Graph inputs are created on demand and remember where their value
// comes from at run time (an ArraySource): a data Array, the current value
// of a Parameter, an optimizer's state buffer, the optimizer's learning rate,
// the random stream. Realizing a value (Tensor::item) finishes the trace:
// its graph, with inputs put in a canonical order, is compiled by the default
// Backend (cached by the printed IR, so a loop that records the same step
// every iteration compiles once) and run; parameters and state are updated
// in place. The next operation starts a new trace.
//
// Canonical input order of a finished graph (each group in creation order):
//   data (Tensor::from; inputs named "x" then "y" first, the others after),
//   lr, seed, offset, params, state.
// Outputs: the requested values (the loss first), then every parameter the
// trace updated (aliasing its input), then every updated state buffer
// (aliasing its input).
#pragma once

#include "ir/builder.h"
#include "ir/graph.h"
#include "runtime/array.h"
#include "runtime/backend.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace kiln {

class Parameter;

// Where a graph input's Array comes from each time the graph runs.
using ArraySource = std::function<Array()>;

// The groups of the canonical input order, first to last.
enum class InputRole { data, lr, rng, param, state };

struct InputBinding {
  Value *value;
  InputRole role;
  ArraySource source;
};

// A finished trace: an immutable graph plus how to feed it. Copyable; the
// compiled executable is shared through the compile cache.
class Program {
public:
  const Graph &graph() const { return *graph_; }
  // Index of the input named `name`, or -1.
  int input_index(std::string_view name) const;
  // Every input's Array, read from its source now.
  std::vector<Array> gather_inputs() const;
  // Compiles (once, through the cache), runs on `inputs` (in graph input
  // order; param and state Arrays are updated in place) and then advances the
  // random stream past the draws this graph made.
  std::vector<Array> run(std::vector<Array> inputs) const;
  std::vector<Array> run() const { return run(gather_inputs()); }

private:
  friend class Trace;
  std::shared_ptr<const Graph> graph_;
  std::vector<InputBinding> bindings_;
  uint64_t random_draws_ = 0;
  mutable std::shared_ptr<Executable> exe_;
};

class Trace {
public:
  Trace();
  Trace(const Trace &) = delete;
  Trace &operator=(const Trace &) = delete;

  // The calling thread's active trace; starts one when there is none.
  static std::shared_ptr<Trace> current();
  // The active trace, or nullptr.
  static std::shared_ptr<Trace> active();

  Graph &graph() { return *graph_; }
  Builder &builder() { return builder_; }
  bool finished() const { return finished_; }
  // Started while a NoGradGuard was alive (frontend/tensor.h): backward()
  // on its values throws.
  bool no_grad() const { return no_grad_; }
  // Throws kiln::Error when the trace has finished (its values were realized
  // and the next step started a new trace).
  void check_open() const;

  // A data input fed with `a` (shared, not copied).
  Value *add_data(Array a, std::string name);
  // An input with a source; see InputRole for where it goes.
  Value *add_input(std::string name, Type type, InputRole role,
                   ArraySource source);
  // The scalar learning-rate input of the optimizer identified by `key`,
  // created once per key and dtype.
  Value *lr(const void *key, DType dtype, ArraySource source);
  // The counter of the next random draw: offset + k for the k-th draw of
  // this trace, over the shared `seed` and `offset` inputs.
  Value *seed();
  Value *next_random_offset();

  // The parameter's current value in this trace: its param input, created on
  // first use, or the value an optimizer step assigned.
  Value *param(const std::shared_ptr<Parameter> &p);
  void assign_param(const Parameter &p, Value *v);
  // Parameters used in this trace, in first-use order.
  std::vector<std::shared_ptr<Parameter>> params() const;
  // Gradient recorded by backward(), or nullptr.
  Value *grad(const Parameter &p) const;
  void set_grad(const Parameter &p, Value *g);
  void clear_grad(const Parameter &p);

  // The current value of a state buffer (an optimizer's momentum, moments,
  // step count): a state input bound to `buffer`, created on first use. The
  // buffer's storage identifies it. `source`, when given, feeds the input
  // instead of `buffer` itself (a module buffer reads its current Array).
  Value *state(const Array &buffer, const std::string &name,
               ArraySource source = {});
  void assign_state(const Array &buffer, Value *v);

  // Ends recording and returns the program computing `outputs` and the
  // in-place updates (see the top of this file). Detaches the trace from its
  // thread; the graph stays readable. An empty name picks "step" when the
  // graph updates anything in place, else "forward".
  Program finish(const std::vector<Value *> &outputs,
                 const std::string &graph_name);

  // The graph finish() produced (with canonical input order), or nullptr
  // while recording; for inspecting what the familiar loop compiled.
  std::shared_ptr<const Graph> finished_graph() const {
    return finished_graph_;
  }

  // Forgets the calling thread's active trace and its unrealized ops (tests,
  // or code that recorded something it no longer wants to run).
  static void discard_active();

  // Results kept when the trace was realized.
  const Array *realized(const Value *v) const;
  void set_realized(const Value *v, Array a) { realized_[v] = std::move(a); }

private:
  struct ParamEntry {
    std::shared_ptr<Parameter> param;
    Value *input = nullptr;
    Value *current = nullptr;
    Value *grad = nullptr;
  };
  struct StateEntry {
    Value *input = nullptr;
    Value *current = nullptr;
  };

  std::unique_ptr<Graph> graph_;
  Builder builder_;
  bool finished_ = false;
  bool no_grad_ = false;
  std::vector<InputBinding> inputs_; // creation order
  std::vector<ParamEntry> params_;   // first-use order
  std::unordered_map<const Parameter *, size_t> param_index_;
  std::vector<StateEntry> states_;
  std::unordered_map<const void *, size_t> state_index_;
  std::map<std::pair<const void *, DType>, Value *> lr_;
  Value *seed_ = nullptr, *offset_ = nullptr;
  uint64_t draws_ = 0;
  std::unordered_map<const Value *, Array> realized_;
  std::shared_ptr<const Graph> finished_graph_;

  friend class TraceScope;
};

// Makes a fresh trace the active one for its lifetime and restores the
// previous one after (compile_train_step records without disturbing a trace
// the caller has open).
class TraceScope {
public:
  TraceScope();
  ~TraceScope();
  TraceScope(const TraceScope &) = delete;
  TraceScope &operator=(const TraceScope &) = delete;
  const std::shared_ptr<Trace> &trace() const { return trace_; }

private:
  std::shared_ptr<Trace> trace_, previous_;
};

// The Backend that compiles realized graphs. Until one is set it is made on
// first use by best_backend() (runtime/device.h): the device KILN_DEVICE
// names (cpu, cuda, interpreter; kiln::Error when it is missing), else CUDA
// when usable, else the CPU backend. The reference interpreter is opt-in.
// frontend/device.h has the same choice by name (kiln::set_device). Setting
// one clears the compile cache; the old backend first writes its device
// copies of params/state back to their host Arrays, and they become the true
// values again (the new backend starts from them).
void set_default_backend(std::unique_ptr<Backend> backend);
// Forgets the default backend (after the same write-back), so that the next
// use chooses again from KILN_DEVICE and the machine.
void reset_default_backend();

// The host/device state contract (runtime/backend.h): a backend may keep
// params and optimizer state in device memory and update them there. These
// reach every live device state (the default backend's, and that of a
// compiled step kept after set_default_backend). Call sync_device_state()
// before reading a param or state Array on the host (Parameter::value() and
// save_checkpoint do it), and mark_host_modified(a) after writing one
// (Parameter::value() on a non-const Parameter and load_checkpoint do it), so
// that the next step copies it to the device again. No-ops on the interpreter
// and the CPU.
void sync_device_state();
void mark_host_modified(const Array &a);

// How realized graphs are optimized before the backend compiles them.
struct CompileOptions {
  // Pass pipeline text (passes/pass_manager.h); memory planning is left to
  // the backend, which plans its own arena.
  std::string pipeline = "decompose-windows,canonicalize,cse,dce,"
                         "fuse-elementwise,fuse-optimizer,dce";
  // When set, the IR after each pass is written here (as KILN_DUMP does).
  std::string dump_dir;
};
// Setting options clears the compile cache.
void set_compile_options(CompileOptions options);
// The backend set, or the one chosen now (see set_default_backend).
Backend &default_backend();
// The compile cache: executables keyed by the printed graph (structure and
// input types).
void clear_compile_cache();
size_t compile_cache_size();

} // namespace kiln
