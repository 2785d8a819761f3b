// Choosing the device that compiled steps run on, in the spirit of PyTorch's
// device selection.
//
// kiln runs every realized graph (the familiar loop's step, a
// compile_train_step, an evaluation) on one process-wide default backend
// (frontend/trace.h). By default that is the fastest one present, chosen on
// first use: the device KILN_DEVICE names (cpu, cuda, interpreter), else
// CUDA when a usable GPU is there, else the CPU backend (LLVM JIT +
// OpenBLAS). The reference interpreter is opt-in (slow; exact reference
// semantics, for tests and debugging).
//
// Parameters and optimizer state always live in host Arrays; a backend may
// keep device copies (runtime/backend.h), which set_device writes back before
// it switches. So there is no per-model `.to(device)`: moving a model is
// choosing the backend its compiled steps use, and that choice is
// process-wide:
//
//   kiln::set_device(kiln::Device::cpu);        // or cuda, interpreter
//   fmt::print("{}\n", kiln::current_device_name());   // "cpu"
//
// A compiled step (TrainStep) keeps the backend it was compiled with; compile
// it again after set_device to move it.
#pragma once

#include <string>
#include <string_view>

namespace kiln {

enum class Device { cpu, cuda, interpreter };

// "cpu", "cuda" or "interpreter".
std::string_view device_name(Device d);
// The inverse of device_name; kiln::Error for any other name.
Device parse_device(std::string_view name);

// Whether the device can be used in this process; when not, *why (if given)
// says why (e.g. "no CUDA driver", "kiln was built without ...").
bool device_available(Device d, std::string *why = nullptr);

// Makes `d` the default backend's device (set_default_backend with a new
// backend: the old one's device copies are written back first and the
// compile cache is cleared). kiln::Error naming why when the device is
// missing; the current device is then left as it was.
void set_device(Device d);

// The default backend's device (choosing it now if none was chosen yet).
// kiln::Error when the default backend is a custom one set through
// set_default_backend that is none of the devices.
Device current_device();
// The default backend's name ("cpu", "cuda", "interpreter", or a custom
// backend's name), for printing.
std::string current_device_name();

// Forgets the chosen device: the next use chooses again from KILN_DEVICE
// and the machine, as a fresh process does.
void reset_device();

} // namespace kiln
