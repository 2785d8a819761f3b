// Profiling events: what `kiln run --profile` and `kiln train --profile`
// print and write as a Chrome trace. Compile phases (tracing, each pass,
// code generation, JIT) and every launch of a step are recorded as timed
// events while profiling is on; with it off (the default) recording costs
// one relaxed atomic load per launch.
//
// It lives in ir/ because every layer records into it (passes, codegen,
// runtime, frontend) and ir/ is the one they all depend on.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::profile {

struct Event {
  std::string name;     // "%12 (fused reduction)", "pass cse", "jit"
  std::string category; // "launch", "pass", "compile", "trace", "step"
  double start_us = 0;  // since the first event of the process
  double dur_us = 0;
  // Launches only: what the launch is and the work it does.
  std::string kind;  // gemm, elementwise, reduction, multi_tensor, host
  int64_t bytes = 0; // bytes read and written, each array once
  double flops = 0;
};

bool enabled();
void set_enabled(bool on);

// Microseconds on the profile's clock (steady, from a process-wide origin).
double now_us();
void record(Event e);
// Every event recorded so far, in order; clears the list.
std::vector<Event> take();

// Records [construction, destruction) as one event when profiling is on.
class Scope {
public:
  // Copies name and category only when profiling is on: a scope on a hot
  // path (every step) costs one relaxed load otherwise.
  Scope(std::string_view name, std::string_view category);
  ~Scope();
  Scope(const Scope &) = delete;
  Scope &operator=(const Scope &) = delete;

private:
  bool on_;
  double start_ = 0;
  std::string name_, category_;
};

} // namespace kiln::profile
