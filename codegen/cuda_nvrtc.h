// NVRTC, loaded with dlopen on first use (so programs that never compile a
// kernel do not pay for it and run where NVRTC is absent). Located through
// KILN_NVRTC (a path), then libnvrtc.so.13 / libnvrtc.so by the loader's
// search (LD_LIBRARY_PATH, ldconfig), then $CUDA_HOME/lib64,
// $CUDA_PATH/lib64 and /usr/local/cuda/lib64.
#pragma once

#include "codegen/cuda_kernel_cache.h"

#include <string>
#include <vector>

namespace kiln::cuda {

struct NvrtcOptions {
  int arch = 90;          // compute capability, e.g. 90 for sm_90
  bool ptx = false;       // PTX for compute_<arch> instead of a sm_<arch> cubin
  bool fast_math = false; // --use_fast_math (off: IEEE division and sqrt)
  bool line_info = false; // -lineinfo, for profilers
  std::vector<std::string> extra;

  // The option strings passed to nvrtcCompileProgram.
  std::vector<std::string> args() const;
};

struct NvrtcResult {
  std::string binary; // cubin bytes, or PTX text
  std::string log;    // the compiler's log (warnings)
  bool from_cache = false;
};

// True when NVRTC could be loaded; otherwise `reason` says why.
bool nvrtc_available(std::string *reason = nullptr);
// "13.0"; throws kiln::Error when NVRTC is unavailable.
std::string nvrtc_version();

// Compiles `source` (one translation unit); `name` names the program in
// messages. Looks in `cache` first (nullptr: no cache) and stores what it
// compiles. Throws kiln::Error with the log when compilation fails.
NvrtcResult nvrtc_compile(const std::string &source, const std::string &name,
                          const NvrtcOptions &opts,
                          const KernelCache *cache = &KernelCache::instance());

} // namespace kiln::cuda
