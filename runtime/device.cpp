#include "runtime/device.h"

#include "ir/error.h"

#if defined(KILN_HAVE_CPU_RUNTIME)
#include "runtime/cpu_backend.h"
#endif
#if defined(KILN_HAVE_CUDA_RUNTIME)
#include "runtime/cuda_backend.h"
#endif

#include <cstdio>
#include <cstdlib>

namespace kiln {

namespace {

std::unique_ptr<Backend> try_cuda(std::string *why) {
#if defined(KILN_HAVE_CUDA_RUNTIME)
  return make_cuda_backend_if_available(why);
#else
  *why = "kiln was built without the CUDA runtime";
  return nullptr;
#endif
}

std::unique_ptr<Backend> try_cpu(std::string *why) {
#if defined(KILN_HAVE_CPU_RUNTIME)
  (void)why;
  return make_cpu_backend();
#else
  *why = "kiln was built without the LLVM CPU backend (KILN_WITH_LLVM=OFF)";
  return nullptr;
#endif
}

} // namespace

std::unique_ptr<Backend> backend_by_name(std::string_view name, bool explain) {
  std::string why;
  if (name == "interpreter")
    return make_interpreter_backend();
  if (name == "cpu") {
    if (auto b = try_cpu(&why))
      return b;
    fail("KILN_DEVICE=cpu: {}", why);
  }
  if (name == "cuda") {
    if (auto b = try_cuda(&why))
      return b;
    fail("KILN_DEVICE=cuda: no usable CUDA device: {}", why);
  }
  if (name.empty() || name == "best") {
    if (auto b = try_cuda(&why))
      return b;
    std::string cpu_why;
    if (auto b = try_cpu(&cpu_why)) {
      static bool said = false; // one line per process
      if (!said && explain)
        std::fprintf(stderr, "kiln: CUDA unavailable (%s); using the CPU\n",
                     why.c_str());
      said = said || explain;
      return b;
    }
    if (explain)
      std::fprintf(stderr,
                   "kiln: CUDA unavailable (%s) and %s; using the reference "
                   "interpreter\n",
                   why.c_str(), cpu_why.c_str());
    return make_interpreter_backend();
  }
  fail("unknown device '{}': expected cpu, cuda, interpreter or best", name);
}

std::unique_ptr<Backend> best_backend(bool explain) {
  const char *env = std::getenv("KILN_DEVICE");
  if (!env)
    return backend_by_name("", explain);
  try {
    return backend_by_name(env, explain);
  } catch (const Error &e) {
    std::string_view msg = e.what();
    if (msg.starts_with("KILN_DEVICE="))
      throw;
    fail("KILN_DEVICE={}: {}", env, msg);
  }
}

} // namespace kiln
