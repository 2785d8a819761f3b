// The emulated NVRTC (libkiln_cudaemu_nvrtc.so), loaded by kiln through
// KILN_NVRTC. nvrtcCompileProgram compiles the CUDA C source unchanged with
// the host C++ compiler, `-include cudaemu_device.h` (the CUDA built-ins),
// into a shared object; the "cubin" (and the "PTX") is that object's bytes,
// which the emulated driver (emu_driver.cpp) loads. The kernels are found
// by name after `__global__` and registered in a footer appended to the
// source, so the driver can call them from a void** parameter array.
//
// Compiled objects are cached on disk by a hash of everything that
// determines them (source, options, the emulator's headers, the compiler
// and its flags) under $KILN_CUDAEMU_CACHE (default
// $XDG_CACHE_HOME/kiln/cudaemu or ~/.cache/kiln/cudaemu; "off" disables),
// so repeated test runs do not recompile. KILN_CUDAEMU_CXX overrides the
// compiler. A test harness, not a CUDA compiler.
#include <nvrtc.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#if !defined(KILN_CUDAEMU_INCLUDE_DIR) || !defined(KILN_CUDAEMU_SOURCE_DIR)
#error                                                                         \
    "KILN_CUDAEMU_INCLUDE_DIR and KILN_CUDAEMU_SOURCE_DIR must name folders of cudaemu_device.h"
#endif
#ifndef KILN_CUDAEMU_CXX
#define KILN_CUDAEMU_CXX "c++"
#endif

#define KILN_EMU_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

struct Program {
  std::string source, name, log, binary;
};

// The flags every kernel is compiled with (tests/cudaemu/CMakeLists.txt,
// which also precompiles the header with them): CUDA's integer
// wrap-around, no contraction into FMA (deterministic rounding), no strict
// aliasing (the vector loads reinterpret pointers).
#ifndef KILN_CUDAEMU_FLAGS
#error "KILN_CUDAEMU_FLAGS must give the kernel compiler's flags"
#endif
const std::string kFlags = std::string(KILN_CUDAEMU_FLAGS) + " -shared";

std::string read_file(const std::string &p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

uint64_t fnv(const std::string &s, uint64_t h) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string hash_hex(const std::string &s) {
  char b[40];
  std::snprintf(b, sizeof b, "%016llx%016llx",
                static_cast<unsigned long long>(fnv(s, 0xcbf29ce484222325ull)),
                static_cast<unsigned long long>(
                    fnv(s, 0x84222325cbf29ce4ull ^ s.size())));
  return b;
}

std::string cache_dir() {
  if (const char *d = std::getenv("KILN_CUDAEMU_CACHE"); d && *d)
    return std::string(d) == "off" ? "" : d;
  if (const char *x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return std::string(x) + "/kiln/cudaemu";
  if (const char *h = std::getenv("HOME"); h && *h)
    return std::string(h) + "/.cache/kiln/cudaemu";
  return "";
}

void mkdirs(const std::string &p) {
  for (size_t i = 1; i <= p.size(); ++i)
    if (i == p.size() || p[i] == '/')
      mkdir(p.substr(0, i).c_str(), 0755);
}

std::string compiler() {
  if (const char *c = std::getenv("KILN_CUDAEMU_CXX"); c && *c)
    return c;
  return KILN_CUDAEMU_CXX;
}

// Source without comments (so a `__global__` in a comment is not a kernel).
std::string strip_comments(const std::string &s) {
  std::string o;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 2, "//") == 0) {
      while (i < s.size() && s[i] != '\n')
        ++i;
      o += '\n';
    } else if (s.compare(i, 2, "/*") == 0) {
      size_t e = s.find("*/", i + 2);
      i = e == std::string::npos ? s.size() : e + 1;
      o += ' ';
    } else {
      o += s[i];
    }
  }
  return o;
}

bool ident_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

// The names of the __global__ functions: the identifier before the first
// '(' after `__global__ void [__launch_bounds__(...)]`.
std::vector<std::string> kernel_names(const std::string &src) {
  std::string s = strip_comments(src);
  std::vector<std::string> names;
  const std::string kw = "__global__";
  for (size_t p = s.find(kw); p != std::string::npos; p = s.find(kw, p + 1)) {
    if ((p > 0 && ident_char(s[p - 1])) ||
        (p + kw.size() < s.size() && ident_char(s[p + kw.size()])))
      continue;
    size_t i = p + kw.size();
    std::string last;
    while (i < s.size() && s[i] != '(' && s[i] != ';' && s[i] != '{') {
      if (ident_char(s[i])) {
        size_t j = i;
        while (j < s.size() && ident_char(s[j]))
          ++j;
        last = s.substr(i, j - i);
        i = j;
        if (last == "__launch_bounds__") {
          while (i < s.size() && s[i] != '(')
            ++i;
          int depth = 0;
          for (; i < s.size(); ++i) {
            depth += s[i] == '(';
            depth -= s[i] == ')';
            if (depth == 0)
              break;
          }
          ++i;
          last.clear();
        }
      } else {
        ++i;
      }
    }
    if (i < s.size() && s[i] == '(' && !last.empty() && last != "void")
      names.push_back(last);
  }
  return names;
}

std::string footer(const std::vector<std::string> &names) {
  std::string f =
      "\n// kiln cudaemu: the kernels of this image\nKILN_EMU_KERNELS(";
  for (const std::string &n : names)
    f += "KILN_EMU_KERNEL(" + n + ") ";
  return f + ")\n";
}

// Fault injection for the emulator's own tests (KILN_CUDAEMU_INJECT):
//   drop_syncthreads=K  deletes the K-th (0-based) `__syncthreads();`
//   halve_shfl_mask     turns every full-warp shuffle mask 0xffffffffu
//                       into 0x0000ffffu
// A kernel with such a fault must fail on the emulator (an error, or a
// result that differs from the interpreter in some fiber order).
bool inject(std::string &src, const std::string &what, std::string &log) {
  const std::string drop = "drop_syncthreads=";
  if (what.rfind(drop, 0) == 0) {
    long k = std::strtol(what.c_str() + drop.size(), nullptr, 10);
    const std::string bar = "__syncthreads();";
    size_t p = src.find(bar);
    for (long i = 0; i < k && p != std::string::npos; ++i)
      p = src.find(bar, p + 1);
    if (p == std::string::npos) {
      log = "nvrtc (kiln cudaemu): KILN_CUDAEMU_INJECT=" + what +
            ": the source has no such __syncthreads";
      return false;
    }
    src.replace(p, bar.size(), "/* injected: no __syncthreads */");
    return true;
  }
  if (what == "halve_shfl_mask") {
    const std::string full = "_sync(0xffffffffu", half = "_sync(0x0000ffffu";
    size_t n = 0;
    for (size_t p = src.find(full); p != std::string::npos;
         p = src.find(full, p + 1), ++n)
      src.replace(p, full.size(), half);
    if (n == 0) {
      log = "nvrtc (kiln cudaemu): KILN_CUDAEMU_INJECT=halve_shfl_mask: the "
            "source has no full-warp shuffle";
      return false;
    }
    return true;
  }
  log = "nvrtc (kiln cudaemu): unknown KILN_CUDAEMU_INJECT=" + what;
  return false;
}

std::string quote(const std::string &s) {
  std::string o = "'";
  for (char c : s)
    o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

nvrtcResult compile(Program &p, const std::vector<std::string> &opts) {
  std::string key_opts;
  for (const std::string &o : opts) {
    if (o.rfind("--gpu-architecture=", 0) == 0 || o.rfind("-arch=", 0) == 0 ||
        o == "-std=c++17" || o == "--use_fast_math" || o == "-lineinfo" ||
        o.rfind("-D", 0) == 0) {
      key_opts += o + "\n";
      continue;
    }
    p.log = "nvrtc (kiln cudaemu): unsupported option " + o;
    return NVRTC_ERROR_INVALID_OPTION;
  }
  // The build's copy of the headers has a GCC precompiled header beside
  // it; another compiler (KILN_CUDAEMU_CXX) gets the sources' copy, which
  // has none (clang rejects a GCC one instead of ignoring it).
  std::string inc = compiler() == KILN_CUDAEMU_CXX ? KILN_CUDAEMU_INCLUDE_DIR
                                                   : KILN_CUDAEMU_SOURCE_DIR;
  std::string header = inc + "/cudaemu_device.h";
  std::string cxx = compiler();
  std::string defines;
  for (const std::string &o : opts)
    if (o.rfind("-D", 0) == 0)
      defines += " " + quote(o);
  std::string source = p.source;
  if (const char *f = std::getenv("KILN_CUDAEMU_INJECT"); f && *f)
    if (!inject(source, f, p.log))
      return NVRTC_ERROR_INVALID_OPTION;
  std::vector<std::string> names = kernel_names(source);
  std::string src = source + footer(names);
  std::string key = hash_hex("kiln-cudaemu-v1\n" + cxx + "\n" + kFlags + "\n" +
                             key_opts + "\n" + read_file(header) + "\n" +
                             read_file(inc + "/cudaemu_api.h") + "\n" + src);
  std::string dir = cache_dir();
  std::string cached = dir.empty() ? "" : dir + "/" + key + ".so";
  if (!cached.empty()) {
    std::string bytes = read_file(cached);
    if (bytes.size() > 4 && bytes.compare(1, 3, "ELF") == 0) {
      p.binary = std::move(bytes);
      return NVRTC_SUCCESS;
    }
  }
  const char *tmp = std::getenv("TMPDIR");
  std::string work =
      std::string(tmp && *tmp ? tmp : "/tmp") + "/kiln_cudaemu_nvrtc_XXXXXX";
  if (!mkdtemp(work.data())) {
    p.log = "nvrtc (kiln cudaemu): cannot create a temporary folder";
    return NVRTC_ERROR_INTERNAL_ERROR;
  }
  std::string cpp = work + "/kernel.cpp", so = work + "/kernel.so",
              log = work + "/log.txt";
  {
    std::ofstream f(cpp, std::ios::binary);
    f << "#line 1 \"" << (p.name.empty() ? "default_program" : p.name) << "\"\n"
      << src;
  }
  std::string cmd = quote(cxx) + " " + kFlags + defines + " -I" + quote(inc) +
                    " -include " + quote(header) + " " + quote(cpp) + " -o " +
                    quote(so) + " > " + quote(log) + " 2>&1";
  int rc = std::system(cmd.c_str());
  p.log = read_file(log);
  nvrtcResult result = NVRTC_SUCCESS;
  if (rc != 0) {
    p.log = "nvrtc (kiln cudaemu): " + cxx + " failed:\n" + p.log;
    result = NVRTC_ERROR_COMPILATION;
  } else {
    p.binary = read_file(so);
    if (p.binary.size() < 4 || p.binary.compare(1, 3, "ELF") != 0) {
      p.log += "\nnvrtc (kiln cudaemu): the compiler wrote no shared object";
      result = NVRTC_ERROR_COMPILATION;
    } else if (!cached.empty()) {
      // Written under a temporary name and renamed: concurrent test
      // processes never see half an object.
      mkdirs(dir);
      std::string t = cached + ".tmp." + std::to_string(getpid());
      {
        std::ofstream f(t, std::ios::binary);
        f.write(p.binary.data(), static_cast<std::streamsize>(p.binary.size()));
      }
      if (std::rename(t.c_str(), cached.c_str()) != 0)
        std::remove(t.c_str());
    }
  }
  std::remove(cpp.c_str());
  std::remove(so.c_str());
  std::remove(log.c_str());
  rmdir(work.c_str());
  return result;
}

} // namespace

KILN_EMU_EXPORT const char *nvrtcGetErrorString(nvrtcResult r) {
  switch (r) {
  case NVRTC_SUCCESS:
    return "NVRTC_SUCCESS";
  case NVRTC_ERROR_OUT_OF_MEMORY:
    return "NVRTC_ERROR_OUT_OF_MEMORY";
  case NVRTC_ERROR_PROGRAM_CREATION_FAILURE:
    return "NVRTC_ERROR_PROGRAM_CREATION_FAILURE";
  case NVRTC_ERROR_INVALID_INPUT:
    return "NVRTC_ERROR_INVALID_INPUT";
  case NVRTC_ERROR_INVALID_PROGRAM:
    return "NVRTC_ERROR_INVALID_PROGRAM";
  case NVRTC_ERROR_INVALID_OPTION:
    return "NVRTC_ERROR_INVALID_OPTION";
  case NVRTC_ERROR_COMPILATION:
    return "NVRTC_ERROR_COMPILATION";
  case NVRTC_ERROR_INTERNAL_ERROR:
    return "NVRTC_ERROR_INTERNAL_ERROR";
  default:
    return "NVRTC_ERROR unknown";
  }
}

// "0.1": not a real NVRTC version, so that kiln's kernel cache never mixes
// emulated objects with real cubins.
KILN_EMU_EXPORT nvrtcResult nvrtcVersion(int *major, int *minor) {
  if (!major || !minor)
    return NVRTC_ERROR_INVALID_INPUT;
  *major = 0;
  *minor = 1;
  return NVRTC_SUCCESS;
}

KILN_EMU_EXPORT nvrtcResult nvrtcCreateProgram(nvrtcProgram *prog,
                                               const char *src,
                                               const char *name, int nheaders,
                                               const char *const *headers,
                                               const char *const *names) {
  (void)headers;
  (void)names;
  if (!prog || !src)
    return NVRTC_ERROR_INVALID_INPUT;
  if (nheaders != 0)
    return NVRTC_ERROR_INVALID_INPUT; // not emulated
  auto *p = new Program;
  p->source = src;
  p->name = name ? name : "";
  *prog = reinterpret_cast<nvrtcProgram>(p);
  return NVRTC_SUCCESS;
}

KILN_EMU_EXPORT nvrtcResult nvrtcDestroyProgram(nvrtcProgram *prog) {
  if (!prog || !*prog)
    return NVRTC_ERROR_INVALID_PROGRAM;
  delete reinterpret_cast<Program *>(*prog);
  *prog = nullptr;
  return NVRTC_SUCCESS;
}

KILN_EMU_EXPORT nvrtcResult nvrtcCompileProgram(nvrtcProgram prog, int n,
                                                const char *const *options) {
  if (!prog || n < 0 || (n > 0 && !options))
    return NVRTC_ERROR_INVALID_INPUT;
  auto *p = reinterpret_cast<Program *>(prog);
  std::vector<std::string> opts(options, options + n);
  p->log.clear();
  p->binary.clear();
  return compile(*p, opts);
}

KILN_EMU_EXPORT nvrtcResult nvrtcGetProgramLogSize(nvrtcProgram prog,
                                                   size_t *size) {
  if (!prog || !size)
    return NVRTC_ERROR_INVALID_INPUT;
  *size = reinterpret_cast<Program *>(prog)->log.size() + 1;
  return NVRTC_SUCCESS;
}

KILN_EMU_EXPORT nvrtcResult nvrtcGetProgramLog(nvrtcProgram prog, char *log) {
  if (!prog || !log)
    return NVRTC_ERROR_INVALID_INPUT;
  const std::string &l = reinterpret_cast<Program *>(prog)->log;
  std::memcpy(log, l.c_str(), l.size() + 1);
  return NVRTC_SUCCESS;
}

// The "PTX" and the "cubin" are both the shared object.
KILN_EMU_EXPORT nvrtcResult nvrtcGetCUBINSize(nvrtcProgram prog, size_t *size) {
  if (!prog || !size)
    return NVRTC_ERROR_INVALID_INPUT;
  *size = reinterpret_cast<Program *>(prog)->binary.size();
  return NVRTC_SUCCESS;
}

KILN_EMU_EXPORT nvrtcResult nvrtcGetCUBIN(nvrtcProgram prog, char *out) {
  if (!prog || !out)
    return NVRTC_ERROR_INVALID_INPUT;
  const std::string &b = reinterpret_cast<Program *>(prog)->binary;
  std::memcpy(out, b.data(), b.size());
  return NVRTC_SUCCESS;
}

KILN_EMU_EXPORT nvrtcResult nvrtcGetPTXSize(nvrtcProgram prog, size_t *size) {
  return nvrtcGetCUBINSize(prog, size);
}

KILN_EMU_EXPORT nvrtcResult nvrtcGetPTX(nvrtcProgram prog, char *out) {
  return nvrtcGetCUBIN(prog, out);
}
