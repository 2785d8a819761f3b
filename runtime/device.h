// Picking a backend: the GPU when there is one, else the CPU.
//
//   KILN_DEVICE unset (or "best"): CUDA when that backend was built and finds
//       a usable GPU, else the CPU backend (the `kiln` command says why not
//       CUDA in one line on stderr), else the reference interpreter.
//   KILN_DEVICE=cpu | cuda | interpreter: that backend, or kiln::Error saying
//       why it is unavailable.
//
// CUDA hook. The CUDA runtime (runtime/cuda_backend.h, library
// kiln_runtime_cuda) provides
//
//   std::unique_ptr<Backend> make_cuda_backend_if_available(std::string *why,
//                                                           ...options);
//
// returning nullptr (and a one-line reason in *why, e.g. "no CUDA driver")
// when no GPU is usable. device.cpp calls it when kiln_runtime_cuda is built
// (KILN_HAVE_CUDA_RUNTIME, set by runtime/CMakeLists.txt); link kiln_device
// to get best_backend(). kiln_frontend links it: the frontend's default
// backend is best_backend(), made on first use (frontend/trace.h), and
// kiln::set_device (frontend/device.h) goes through backend_by_name.
#pragma once

#include "runtime/backend.h"

#include <memory>
#include <string>
#include <string_view>

namespace kiln {

// The backend KILN_DEVICE asks for (see above). `explain`: say on stderr
// (once per process) why "best" did not pick CUDA; the `kiln` command does,
// the library's default device (frontend/trace.h) stays quiet, as PyTorch
// does (kiln::current_device_name() tells).
std::unique_ptr<Backend> best_backend(bool explain = true);

// A backend by name: "best", "cpu", "cuda" or "interpreter"; throws
// kiln::Error when it is unknown or unavailable.
std::unique_ptr<Backend> backend_by_name(std::string_view name,
                                         bool explain = true);

} // namespace kiln
