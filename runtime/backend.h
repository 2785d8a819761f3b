// Backends compile an optimized graph into an Executable that runs it. The
// reference interpreter is one backend (the oracle); the CPU (LLVM JIT +
// OpenBLAS) and CUDA (NVRTC + cuBLAS) backends are the fast ones.
#pragma once

#include "ir/graph.h"
#include "runtime/array.h"

#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace kiln {

// One compiled graph, replayed once per step.
class Executable {
public:
  virtual ~Executable() = default;
  // `inputs` are bound by position and must match the graph's input types.
  // Returns every output in order; an output that aliases an input (an
  // in-place update of a param or state) is written into that input's
  // storage and returned as that same Array.
  virtual std::vector<Array> run(std::span<Array> inputs) = 0;
};

class Backend {
public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual std::unique_ptr<Executable> compile(const Graph &g) = 0;

  // The host/device state contract. A backend may keep param and state
  // inputs in its own memory across runs (the CUDA backend keeps them on the
  // device and updates them there), so the host Arrays go stale:
  //  - sync_to_host() before any host read of a param/state Array (a
  //    checkpoint save, evaluating on another backend, a test): it writes
  //    every newer device copy back into its host Array;
  //  - mark_host_modified(a) after any host write to such an Array (a
  //    checkpoint load, an edit): the next run copies it in again;
  //    mark_all_host_modified() does so for every Array the backend holds.
  // Backends that run on the host Arrays themselves (the interpreter, the
  // CPU) need neither: the defaults do nothing.
  virtual void sync_to_host() {}
  virtual void mark_host_modified(const Array &) {}
  virtual void mark_all_host_modified() {}
};

// Device memory that holds params/state for executables (the CUDA backend's
// context). Each registers itself, so that a host read anywhere can reach
// every copy: an executable outlives its Backend object (a compiled step
// kept after set_default_backend) and tests make backends directly.
class DeviceState {
public:
  virtual ~DeviceState() = default;
  virtual void sync_to_host() = 0;
  virtual void mark_host_modified(const Array &a) = 0;
};
void register_device_state(std::weak_ptr<DeviceState> state);
// Backend::sync_to_host / mark_host_modified on every live DeviceState
// (cheap when none ran since the last sync; nothing without one).
void sync_all_device_state();
void mark_host_modified_everywhere(const Array &a);

// The reference interpreter as a backend.
std::unique_ptr<Backend> make_interpreter_backend();

// Checks that `inputs` match the graph's inputs (count, type); throws
// kiln::Error naming the input otherwise. Shared by every backend.
void check_inputs(const Graph &g, std::span<const Array> inputs);

} // namespace kiln
