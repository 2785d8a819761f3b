#include "frontend/trace.h"

#include "frontend/parameter.h"
#include "frontend/random.h"
#include "frontend/tensor.h"
#include "ir/error.h"
#include "ir/printer.h"
#include "ir/profile.h"
#include "ir/verifier.h"
#include "passes/pass_manager.h"
#include "runtime/device.h"

#include <algorithm>
#include <cctype>
#include <mutex>

namespace kiln {

namespace {

thread_local std::shared_ptr<Trace> t_active;

struct CompileCache {
  std::mutex mu;
  // Made on first use (backend_locked), so that a program that never
  // realizes a value initialises neither LLVM nor CUDA.
  std::unique_ptr<Backend> backend;
  CompileOptions options;
  std::unordered_map<std::string, std::shared_ptr<Executable>> exes;
};

CompileCache &cache() {
  static CompileCache c;
  return c;
}

// The default backend, made now if none is set: the one KILN_DEVICE asks for,
// else CUDA when usable, else the CPU (runtime/device.h). A KILN_DEVICE that
// names a missing device throws here, at the first compile, and the next use
// tries again. Call with c.mu held.
Backend &backend_locked(CompileCache &c) {
  if (!c.backend)
    c.backend = best_backend(/*explain=*/false);
  return *c.backend;
}

Array scalar_array(DType dtype, double v) {
  Array a(Type{dtype, {}});
  a.set(0, v);
  return a;
}

// A copy of `g` whose inputs come in `order` (indices into g's inputs).
// Nodes keep their order; names, attributes and output aliases carry over.
std::unique_ptr<Graph> with_input_order(const Graph &g,
                                        const std::vector<size_t> &order) {
  auto out = std::make_unique<Graph>(g.name);
  std::unordered_map<const Value *, Value *> map;
  std::vector<int> new_pos(g.inputs().size());
  for (size_t i = 0; i < order.size(); ++i) {
    const GraphInput &in = g.inputs()[order[i]];
    map[in.value] = out->add_input(in.value->name, in.value->type, in.kind);
    new_pos[order[i]] = static_cast<int>(i);
  }
  for (const auto &n : g.nodes())
    out->copy_node(*n, map);
  for (const GraphOutput &o : g.outputs)
    out->add_output(map.at(o.value), o.alias < 0 ? -1 : new_pos[o.alias]);
  return out;
}

} // namespace

// ---- Program ----------------------------------------------------------------

int Program::input_index(std::string_view name) const {
  for (size_t i = 0; i < graph_->inputs().size(); ++i)
    if (graph_->inputs()[i].value->name == name)
      return static_cast<int>(i);
  return -1;
}

std::vector<Array> Program::gather_inputs() const {
  std::vector<Array> in;
  in.reserve(bindings_.size());
  for (const InputBinding &b : bindings_)
    in.push_back(b.source());
  return in;
}

std::vector<Array> Program::run(std::vector<Array> inputs) const {
  if (!exe_) {
    std::string key = print(*graph_);
    CompileCache &c = cache();
    std::lock_guard lock(c.mu);
    auto it = c.exes.find(key);
    if (it == c.exes.end()) {
      // The traced graph stays as recorded (it is what `kiln ir` prints and
      // the cache key); the backend compiles an optimized copy.
      auto optimized = graph_->clone();
      PassOptions popts;
      popts.dump_dir = c.options.dump_dir;
      PassManager pm(popts);
      pm.add_pipeline(c.options.pipeline);
      pm.run(*optimized);
      std::unique_ptr<Executable> exe;
      {
        profile::Scope scope(
            fmt::format("{} backend compile", backend_locked(c).name()),
            "compile");
        exe = backend_locked(c).compile(*optimized);
      }
      it = c.exes.emplace(key, std::move(exe)).first;
    }
    exe_ = it->second;
  }
  std::vector<Array> out;
  {
    profile::Scope scope("step", "step");
    out = exe_->run(inputs);
  }
  if (random_draws_)
    advance_graph_offset(random_draws_);
  return out;
}

// ---- Trace ------------------------------------------------------------------

Trace::Trace()
    : graph_(std::make_unique<Graph>("main")), builder_(*graph_),
      no_grad_(!grad_enabled()) {}

std::shared_ptr<Trace> Trace::current() {
  if (!t_active || t_active->finished_)
    t_active = std::make_shared<Trace>();
  return t_active;
}

std::shared_ptr<Trace> Trace::active() {
  return t_active && !t_active->finished_ ? t_active : nullptr;
}

void Trace::discard_active() { t_active.reset(); }

void Trace::check_open() const {
  if (finished_)
    fail("this tensor belongs to a step that was already realized; "
         "realize every value you need together (kiln::realize) or "
         "record the ops before calling item()");
}

Value *Trace::add_input(std::string name, Type type, InputRole role,
                        ArraySource source) {
  check_open();
  InputKind kind = role == InputRole::param   ? InputKind::param
                   : role == InputRole::state ? InputKind::state
                                              : InputKind::data;
  Value *v = graph_->add_input(std::move(name), std::move(type), kind);
  inputs_.push_back({v, role, std::move(source)});
  return v;
}

Value *Trace::add_data(Array a, std::string name) {
  Type t = a.type();
  return add_input(std::move(name), t, InputRole::data, [a]() { return a; });
}

Value *Trace::lr(const void *key, DType dtype, ArraySource source) {
  auto k = std::make_pair(key, dtype);
  auto it = lr_.find(k);
  if (it != lr_.end())
    return it->second;
  Value *v = add_input("lr", {dtype, {}}, InputRole::lr, std::move(source));
  lr_[k] = v;
  return v;
}

Value *Trace::seed() {
  if (!seed_) {
    seed_ = add_input("seed", {DType::i64, {}}, InputRole::rng, [] {
      return scalar_array(DType::i64, static_cast<double>(graph_seed()));
    });
    offset_ = add_input("offset", {DType::i64, {}}, InputRole::rng, [] {
      return scalar_array(DType::i64, static_cast<double>(graph_offset()));
    });
  }
  return seed_;
}

Value *Trace::next_random_offset() {
  seed();
  uint64_t k = draws_++;
  if (k == 0)
    return offset_;
  return builder_.add(offset_,
                      builder_.scalar(static_cast<double>(k), DType::i64));
}

Value *Trace::param(const std::shared_ptr<Parameter> &p) {
  check_open();
  auto it = param_index_.find(p.get());
  if (it != param_index_.end())
    return params_[it->second].current;
  std::string name = p->name().empty() ? "param" : p->name();
  // The source reads the parameter when the step runs, so a replayed step
  // sees a value the user assigned (a loaded checkpoint) in between.
  // (bound_value: the backend owns the value while it runs the step; a
  // synchronizing read here would copy every parameter back every step.)
  Value *in = add_input(name, p->type(), InputRole::param,
                        [p]() { return p->bound_value(); });
  param_index_[p.get()] = params_.size();
  params_.push_back({p, in, in, nullptr});
  return in;
}

void Trace::assign_param(const Parameter &p, Value *v) {
  auto it = param_index_.find(&p);
  if (it == param_index_.end())
    fail("parameter '{}' is not used in this trace", p.name());
  ParamEntry &e = params_[it->second];
  if (v->type != e.input->type)
    fail("assigning {} to parameter '{}' of type {}", v->type.str(), p.name(),
         e.input->type.str());
  e.current = v;
}

std::vector<std::shared_ptr<Parameter>> Trace::params() const {
  std::vector<std::shared_ptr<Parameter>> r;
  for (const ParamEntry &e : params_)
    r.push_back(e.param);
  return r;
}

Value *Trace::grad(const Parameter &p) const {
  auto it = param_index_.find(&p);
  return it == param_index_.end() ? nullptr : params_[it->second].grad;
}

void Trace::set_grad(const Parameter &p, Value *g) {
  params_.at(param_index_.at(&p)).grad = g;
}

void Trace::clear_grad(const Parameter &p) {
  auto it = param_index_.find(&p);
  if (it != param_index_.end())
    params_[it->second].grad = nullptr;
}

Value *Trace::state(const Array &buffer, const std::string &name,
                    ArraySource source) {
  check_open();
  auto it = state_index_.find(buffer.data());
  if (it != state_index_.end())
    return states_[it->second].current;
  if (!source)
    source = [buffer]() { return buffer; };
  Value *in =
      add_input(name, buffer.type(), InputRole::state, std::move(source));
  state_index_[buffer.data()] = states_.size();
  states_.push_back({in, in});
  return in;
}

void Trace::assign_state(const Array &buffer, Value *v) {
  StateEntry &e = states_.at(state_index_.at(buffer.data()));
  if (v->type != e.input->type)
    fail("assigning {} to state '{}' of type {}", v->type.str(), e.input->name,
         e.input->type.str());
  e.current = v;
}

Program Trace::finish(const std::vector<Value *> &outputs,
                      const std::string &graph_name) {
  check_open();
  finished_ = true;
  if (t_active.get() == this)
    t_active.reset();

  graph_->outputs.clear();
  for (Value *v : outputs)
    graph_->add_output(v);
  // Name the in-place updates after what they update, so the step IR reads
  // `return %loss, %fc1.weight_next -> %fc1.weight, ...`.
  auto name_update = [](Value *v, const Value *in) {
    if (v->def &&
        (v->name.empty() ||
         std::all_of(v->name.begin(), v->name.end(),
                     [](unsigned char c) { return std::isdigit(c); })))
      v->name = in->name + "_next";
  };
  for (const ParamEntry &e : params_)
    if (e.current != e.input) {
      name_update(e.current, e.input);
      graph_->add_output(e.current, graph_->input_index(e.input));
    }
  for (const StateEntry &e : states_)
    if (e.current != e.input) {
      name_update(e.current, e.input);
      graph_->add_output(e.current, graph_->input_index(e.input));
    }

  bool updates = graph_->outputs.size() > outputs.size();
  graph_->name = !graph_name.empty() ? graph_name
                 : updates           ? "step"
                                     : "forward";

  std::vector<size_t> order(inputs_.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  // Within the data group, inputs named x and y lead: C++ leaves the order
  // of evaluating function arguments unspecified, so
  // `loss_fn(model(Tensor::from(x, "x")), Tensor::from(y, "y"))` may create
  // y first, and the step graph must not depend on the compiler.
  auto rank = [&](size_t i) {
    const InputBinding &in = inputs_[i];
    int sub = in.role != InputRole::data ? 0
              : in.value->name == "x"    ? 0
              : in.value->name == "y"    ? 1
                                         : 2;
    return std::make_pair(static_cast<int>(in.role), sub);
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return rank(a) < rank(b); });
  // Inputs were created in the order of inputs_, so position == index.
  Program p;
  auto g = with_input_order(*graph_, order);
  for (size_t i = 0; i < order.size(); ++i)
    p.bindings_.push_back({g->inputs()[i].value, inputs_[order[i]].role,
                           inputs_[order[i]].source});
  verify(*g);
  p.graph_ = std::move(g);
  finished_graph_ = p.graph_;
  p.random_draws_ = draws_;
  return p;
}

const Array *Trace::realized(const Value *v) const {
  auto it = realized_.find(v);
  return it == realized_.end() ? nullptr : &it->second;
}

TraceScope::TraceScope()
    : trace_(std::make_shared<Trace>()), previous_(t_active) {
  t_active = trace_;
}

TraceScope::~TraceScope() { t_active = previous_; }

// ---- backend and cache ---------------------------------------------------

void set_default_backend(std::unique_ptr<Backend> backend) {
  CompileCache &c = cache();
  std::lock_guard lock(c.mu);
  // Executables of the old backend may live on (a TrainStep holds one):
  // after the write-back their device copies are stale, so a later run of
  // one copies the host Arrays in again.
  if (c.backend) {
    c.backend->sync_to_host();
    c.backend->mark_all_host_modified();
  }
  c.backend = std::move(backend);
  c.exes.clear();
}

Backend &default_backend() {
  CompileCache &c = cache();
  std::lock_guard lock(c.mu);
  return backend_locked(c);
}

void reset_default_backend() { set_default_backend(nullptr); }

// Every live device state, not only the default backend's: a compiled step
// keeps its executable (and its device copies) after set_default_backend.
void sync_device_state() { sync_all_device_state(); }

void mark_host_modified(const Array &a) { mark_host_modified_everywhere(a); }

void set_compile_options(CompileOptions options) {
  CompileCache &c = cache();
  std::lock_guard lock(c.mu);
  parse_pipeline(options.pipeline); // reject unknown passes now
  c.options = std::move(options);
  c.exes.clear();
}

void clear_compile_cache() {
  CompileCache &c = cache();
  std::lock_guard lock(c.mu);
  c.exes.clear();
}

size_t compile_cache_size() {
  CompileCache &c = cache();
  std::lock_guard lock(c.mu);
  return c.exes.size();
}

} // namespace kiln
