// Parameter: a trained array with a name. Its host Array is the current value
// (updated in place when a step runs); inside a trace it is a `param` input,
// created on first use and named by the parameter's dotted name
// (`fc1.weight`), and after backward() it has a gradient in that trace.
#pragma once

#include "frontend/tensor.h"
#include "runtime/array.h"

#include <memory>
#include <string>
#include <vector>

namespace kiln {

class Parameter : public std::enable_shared_from_this<Parameter> {
public:
  Parameter(std::string name, Array value)
      : name_(std::move(name)), value_(std::move(value)) {}

  const std::string &name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  const Type &type() const { return value_.type(); }

  // The current value, read back from the device first when the default
  // backend keeps it there (frontend/trace.h, sync_device_state), so it is
  // never stale. The non-const overload also marks it modified on the host
  // (the caller may write through it; the next step copies it to the device
  // again). Replacing it (e.g. loading a checkpoint) must keep the type, or
  // compiled steps stop matching. A handle kept past the next step goes
  // stale: read value() again, and after writing through a kept handle
  // call mark_host_modified(handle).
  Array &value();
  const Array &value() const;
  // The host Array as the backend binds it, without synchronizing (what a
  // step's param input is fed with; not for reading the value).
  Array &bound_value() { return value_; }

  // The parameter's value in the current trace (after an optimizer step in
  // the same trace, the updated value).
  Tensor tensor();
  // d(loss)/d(this) recorded by backward() in the active trace; undefined
  // before backward, after zero_grad() and once the step was realized.
  Tensor grad() const;

private:
  std::string name_;
  Array value_;
};

// Drops (set_to_none, torch's default) the gradients of `params` recorded in
// the active trace, or sets each to zeros (creating the trace and the
// params' inputs when needed): backward() then adds to the zeros, and an
// optimizer step updates every one of them, as torch does for zero
// gradients (weight decay and momentum still move them).
void zero_grads(const std::vector<std::shared_ptr<Parameter>> &params,
                bool set_to_none = true);

// Buffer: a named array that is module state but not trained (torch's
// register_buffer: running statistics). Saved in checkpoints with the
// parameters; inside a trace it is a `state` input named by its dotted name,
// and assign() makes the step write the new value back in place (the step
// graph returns it aliasing its input), as optimizer state is.
class Buffer : public std::enable_shared_from_this<Buffer> {
public:
  Buffer(std::string name, Array value)
      : name_(std::move(name)), value_(std::move(value)) {}

  const std::string &name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  const Type &type() const { return value_.type(); }

  // As Parameter::value(): synchronized with the device, and marked
  // modified on the host by the non-const overload.
  Array &value();
  const Array &value() const;
  Array &bound_value() { return value_; }

  // The buffer's value in the current trace (after assign(), the assigned
  // value).
  Tensor tensor();
  // Records `v` (of the buffer's type) as the buffer's new value: the step
  // updates the host (or device) array in place.
  void assign(const Tensor &v);

private:
  std::string name_;
  Array value_;
};

} // namespace kiln
