#include "ir/profile.h"

#include <atomic>
#include <mutex>
#include <utility>

namespace kiln::profile {

namespace {

std::atomic<bool> on{false};
std::mutex mu;
std::vector<Event> events; // guarded by mu

std::chrono::steady_clock::time_point origin() {
  static const auto t0 = std::chrono::steady_clock::now();
  return t0;
}

} // namespace

bool enabled() { return on.load(std::memory_order_relaxed); }

void set_enabled(bool v) {
  origin();
  on.store(v, std::memory_order_relaxed);
}

double now_us() {
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now() - origin())
      .count();
}

void record(Event e) {
  std::lock_guard lock(mu);
  events.push_back(std::move(e));
}

std::vector<Event> take() {
  std::lock_guard lock(mu);
  return std::exchange(events, {});
}

Scope::Scope(std::string_view name, std::string_view category)
    : on_(enabled()) {
  if (on_) {
    name_ = name;
    category_ = category;
    start_ = now_us();
  }
}

Scope::~Scope() {
  if (on_)
    record({std::move(name_), std::move(category_), start_, now_us() - start_,
            "", 0, 0});
}

} // namespace kiln::profile
