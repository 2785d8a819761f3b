#include "codegen/cuda_nvrtc.h"

#include "ir/error.h"

#include <fmt/format.h>
#include <nvrtc.h>

#include <cstdlib>
#include <dlfcn.h>
#include <mutex>

namespace kiln::cuda {

namespace {

struct Nvrtc {
  void *lib = nullptr;
  std::string path;
  std::string error; // why it could not be loaded
  decltype(&::nvrtcVersion) Version = nullptr;
  decltype(&::nvrtcGetErrorString) GetErrorString = nullptr;
  decltype(&::nvrtcCreateProgram) CreateProgram = nullptr;
  decltype(&::nvrtcDestroyProgram) DestroyProgram = nullptr;
  decltype(&::nvrtcCompileProgram) CompileProgram = nullptr;
  decltype(&::nvrtcGetProgramLogSize) GetProgramLogSize = nullptr;
  decltype(&::nvrtcGetProgramLog) GetProgramLog = nullptr;
  decltype(&::nvrtcGetPTXSize) GetPTXSize = nullptr;
  decltype(&::nvrtcGetPTX) GetPTX = nullptr;
  decltype(&::nvrtcGetCUBINSize) GetCUBINSize = nullptr;
  decltype(&::nvrtcGetCUBIN) GetCUBIN = nullptr;
  std::string version;
};

std::vector<std::string> candidates() {
  std::vector<std::string> c;
  if (const char *p = std::getenv("KILN_NVRTC"); p && *p)
    c.push_back(p);
  c.push_back("libnvrtc.so.13");
  c.push_back("libnvrtc.so");
  for (const char *var : {"CUDA_HOME", "CUDA_PATH"})
    if (const char *h = std::getenv(var); h && *h) {
      c.push_back(fmt::format("{}/lib64/libnvrtc.so.13", h));
      c.push_back(fmt::format("{}/lib64/libnvrtc.so", h));
    }
  c.push_back("/usr/local/cuda/lib64/libnvrtc.so.13");
  c.push_back("/usr/local/cuda/lib64/libnvrtc.so");
  return c;
}

template <typename F> bool sym(Nvrtc &n, F &f, const char *name) {
  f = reinterpret_cast<F>(dlsym(n.lib, name));
  if (!f)
    n.error = fmt::format("{} lacks {}", n.path, name);
  return f != nullptr;
}

const Nvrtc &nvrtc() {
  static Nvrtc n;
  static std::once_flag once;
  std::call_once(once, [] {
    std::string tried;
    for (const std::string &c : candidates()) {
      n.lib = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (n.lib) {
        n.path = c;
        break;
      }
      tried += (tried.empty() ? "" : ", ") + c;
    }
    if (!n.lib) {
      n.error = fmt::format("NVRTC not found (tried {})", tried);
      return;
    }
    bool ok = sym(n, n.Version, "nvrtcVersion") &&
              sym(n, n.GetErrorString, "nvrtcGetErrorString") &&
              sym(n, n.CreateProgram, "nvrtcCreateProgram") &&
              sym(n, n.DestroyProgram, "nvrtcDestroyProgram") &&
              sym(n, n.CompileProgram, "nvrtcCompileProgram") &&
              sym(n, n.GetProgramLogSize, "nvrtcGetProgramLogSize") &&
              sym(n, n.GetProgramLog, "nvrtcGetProgramLog") &&
              sym(n, n.GetPTXSize, "nvrtcGetPTXSize") &&
              sym(n, n.GetPTX, "nvrtcGetPTX") &&
              sym(n, n.GetCUBINSize, "nvrtcGetCUBINSize") &&
              sym(n, n.GetCUBIN, "nvrtcGetCUBIN");
    if (!ok) {
      dlclose(n.lib);
      n.lib = nullptr;
      return;
    }
    int major = 0, minor = 0;
    n.Version(&major, &minor);
    n.version = fmt::format("{}.{}", major, minor);
  });
  return n;
}

const Nvrtc &need() {
  const Nvrtc &n = nvrtc();
  if (!n.lib)
    fail("cuda: {}", n.error);
  return n;
}

} // namespace

std::vector<std::string> NvrtcOptions::args() const {
  std::vector<std::string> a;
  a.push_back(
      fmt::format("--gpu-architecture={}_{}", ptx ? "compute" : "sm", arch));
  a.push_back("-std=c++17");
  if (fast_math)
    a.push_back("--use_fast_math");
  if (line_info)
    a.push_back("-lineinfo");
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

bool nvrtc_available(std::string *reason) {
  const Nvrtc &n = nvrtc();
  if (!n.lib && reason)
    *reason = n.error;
  return n.lib != nullptr;
}

std::string nvrtc_version() { return need().version; }

NvrtcResult nvrtc_compile(const std::string &source, const std::string &name,
                          const NvrtcOptions &opts, const KernelCache *cache) {
  const Nvrtc &n = need();
  std::vector<std::string> args = opts.args();
  std::string arch =
      fmt::format("{}{}", opts.ptx ? "compute_" : "sm_", opts.arch);
  std::string key = KernelCache::make_key(
      source, fmt::format("{}", fmt::join(args, " ")), arch, n.version);
  NvrtcResult r;
  if (cache)
    if (auto hit = cache->load(key)) {
      r.binary = std::move(*hit);
      r.from_cache = true;
      return r;
    }
  nvrtcProgram prog = nullptr;
  std::string file = name + ".cu";
  nvrtcResult st =
      n.CreateProgram(&prog, source.c_str(), file.c_str(), 0, nullptr, nullptr);
  if (st != NVRTC_SUCCESS)
    fail("cuda: nvrtcCreateProgram({}): {}", name, n.GetErrorString(st));
  std::vector<const char *> cargs;
  for (const std::string &a : args)
    cargs.push_back(a.c_str());
  st = n.CompileProgram(prog, static_cast<int>(cargs.size()), cargs.data());
  size_t log_size = 0;
  n.GetProgramLogSize(prog, &log_size);
  r.log.resize(log_size);
  if (log_size)
    n.GetProgramLog(prog, r.log.data());
  while (!r.log.empty() && (r.log.back() == '\0' || r.log.back() == '\n'))
    r.log.pop_back();
  if (st != NVRTC_SUCCESS) {
    n.DestroyProgram(&prog);
    fail("cuda: NVRTC failed to compile {} for {} ({}):\n{}", name, arch,
         n.GetErrorString(st), r.log);
  }
  size_t size = 0;
  if (opts.ptx) {
    n.GetPTXSize(prog, &size);
    r.binary.resize(size);
    n.GetPTX(prog, r.binary.data());
    while (!r.binary.empty() && r.binary.back() == '\0')
      r.binary.pop_back();
  } else {
    n.GetCUBINSize(prog, &size);
    r.binary.resize(size);
    n.GetCUBIN(prog, r.binary.data());
  }
  n.DestroyProgram(&prog);
  if (r.binary.empty())
    fail("cuda: NVRTC produced no {} for {}", opts.ptx ? "PTX" : "cubin", name);
  if (cache)
    cache->store(key, r.binary);
  return r;
}

} // namespace kiln::cuda
