#include "frontend/device.h"

#include "frontend/trace.h"
#include "ir/error.h"
#include "runtime/device.h"

namespace kiln {

std::string_view device_name(Device d) {
  switch (d) {
  case Device::cpu:
    return "cpu";
  case Device::cuda:
    return "cuda";
  case Device::interpreter:
    return "interpreter";
  }
  fail("device_name: invalid Device value {}", static_cast<int>(d));
}

Device parse_device(std::string_view name) {
  for (Device d : {Device::cpu, Device::cuda, Device::interpreter})
    if (name == device_name(d))
      return d;
  fail("unknown device '{}': expected cpu, cuda or interpreter", name);
}

namespace {

// backend_by_name words its errors for KILN_DEVICE ("KILN_DEVICE=cuda: no
// usable CUDA device: ..."); a request made in code drops that prefix.
std::string without_env_prefix(const Error &e) {
  std::string_view msg = e.what();
  if (auto eq = msg.find(": ");
      msg.starts_with("KILN_DEVICE=") && eq != std::string_view::npos)
    msg.remove_prefix(eq + 2);
  return std::string(msg);
}

} // namespace

bool device_available(Device d, std::string *why) {
  // Making the backend is the only honest test (a GPU may be present with no
  // driver, or the driver without NVRTC); it is cheap next to compiling.
  try {
    backend_by_name(device_name(d));
    return true;
  } catch (const Error &e) {
    if (why)
      *why = without_env_prefix(e);
    return false;
  }
}

void set_device(Device d) {
  std::unique_ptr<Backend> b;
  try {
    b = backend_by_name(device_name(d));
  } catch (const Error &e) {
    fail("set_device({}): {}", device_name(d), without_env_prefix(e));
  }
  set_default_backend(std::move(b));
}

Device current_device() {
  std::string name(default_backend().name());
  for (Device d : {Device::cpu, Device::cuda, Device::interpreter})
    if (name == device_name(d))
      return d;
  fail("current_device: the default backend '{}' is not one of kiln's devices "
       "(set through set_default_backend); use current_device_name()",
       name);
}

std::string current_device_name() {
  return std::string(default_backend().name());
}

void reset_device() { reset_default_backend(); }

} // namespace kiln
