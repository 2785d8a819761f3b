// The emulated CUDA driver (libkiln_cudaemu_driver.so), loaded by kiln's
// runtime through KILN_CUDA_DRIVER in place of libcuda.so.1. A test harness:
// one device of host memory, every stream operation executed in order at the
// time it is enqueued (or recorded while the stream is being captured and
// replayed by cuGraphLaunch), kernels run on fibers.
//
// - Memory: cuMemAlloc is host memory in a table of allocations; copies and
//   memsets check that the device range lies inside one live allocation
//   (CUDA_ERROR_INVALID_VALUE otherwise). New and freed memory is filled
//   with 0xff bytes (NaN floats, -1 integers) so that reads of memory that
//   was never written show up (KILN_CUDAEMU_POISON=0 turns it off).
// - Modules: the "cubin" is a shared object built by the emulated NVRTC;
//   cuModuleLoadData finds its size from the ELF headers, writes it to a
//   temporary file and dlopens it.
// - Launches: every block runs on the calling OS thread, its threads as
//   fibers (ucontext). __syncthreads is a barrier of the block's fibers, a
//   warp shuffle a rendezvous of the lanes of its mask; a barrier reached by
//   only some threads, or a shuffle whose mask names a lane that exited or
//   waits elsewhere, fails the launch with CUDA_ERROR_LAUNCH_FAILED and a
//   message (cuGetErrorString) naming the kernel, block and threads; it is
//   a hang or undefined behaviour on a GPU. KILN_CUDAEMU_ORDER=forward
//   (default), reverse or random (KILN_CUDAEMU_SEED) orders the blocks and
//   the fibers between synchronisation points, so a missing barrier shows as
//   a result that depends on the order.
// - Stream capture (cuStreamBeginCapture..cuStreamEndCapture) records the
//   operations; cuGraphLaunch replays them. Allocation, free and
//   synchronisation of the capturing stream during a capture fail with
//   CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED and invalidate the capture, as on
//   the real driver.
// - Events hold host time stamps.
#include "cudaemu_api.h"

#include <cuda.h>
#include <dlfcn.h>
#include <elf.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#define KILN_EMU_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

// ---------------------------------------------------------------- errors

// Globals the API uses are never destroyed: a program may call the driver
// during its static destruction (kiln's tests and tools may).
std::mutex g_msg_mu;
std::string &g_msg = *new std::string; // the message of the last failure
CUresult g_msg_code = CUDA_SUCCESS;

CUresult fail_with(CUresult code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
CUresult fail_with(CUresult code, const char *fmt, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  {
    std::lock_guard<std::mutex> l(g_msg_mu);
    g_msg = std::string("kiln cudaemu: ") + buf;
    g_msg_code = code;
  }
  std::fprintf(stderr, "kiln cudaemu: %s\n", buf);
  if (const char *a = std::getenv("KILN_CUDAEMU_ABORT"); a && *a == '1')
    std::abort();
  return code;
}

struct ErrorName {
  CUresult code;
  const char *name, *text;
};
const ErrorName kErrors[] = {
    {CUDA_SUCCESS, "CUDA_SUCCESS", "no error"},
    {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED",
     "initialization error"},
    {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE",
     "invalid device ordinal"},
    {CUDA_ERROR_INVALID_IMAGE, "CUDA_ERROR_INVALID_IMAGE",
     "device kernel image is invalid"},
    {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT",
     "invalid device context"},
    {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE",
     "invalid resource handle"},
    {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {CUDA_ERROR_NOT_READY, "CUDA_ERROR_NOT_READY", "device not ready"},
    {CUDA_ERROR_ILLEGAL_ADDRESS, "CUDA_ERROR_ILLEGAL_ADDRESS",
     "an illegal memory access was encountered"},
    {CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
     "too many resources requested for launch"},
    {CUDA_ERROR_LAUNCH_FAILED, "CUDA_ERROR_LAUNCH_FAILED",
     "unspecified launch failure"},
    {CUDA_ERROR_ILLEGAL_STATE, "CUDA_ERROR_ILLEGAL_STATE",
     "the operation cannot be performed in the present state"},
    {CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
     "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED",
     "operation not permitted when stream is capturing"},
    {CUDA_ERROR_STREAM_CAPTURE_INVALIDATED,
     "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED",
     "operation failed due to a previous error during capture"},
    {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED",
     "operation not supported"},
    {CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

// ---------------------------------------------------------------- config

enum class Order { forward, reverse, random };

struct Config {
  Order order = Order::forward;
  uint64_t seed = 1;
  bool poison = true;
  int sms = 2;
};

Config read_config() {
  Config c;
  if (const char *o = std::getenv("KILN_CUDAEMU_ORDER"); o && *o) {
    std::string s = o;
    if (s == "forward")
      c.order = Order::forward;
    else if (s == "reverse")
      c.order = Order::reverse;
    else if (s == "random")
      c.order = Order::random;
    else {
      std::fprintf(stderr,
                   "kiln cudaemu: KILN_CUDAEMU_ORDER=%s is not forward, "
                   "reverse or random\n",
                   o);
      std::abort();
    }
  }
  if (const char *s = std::getenv("KILN_CUDAEMU_SEED"); s && *s)
    c.seed = std::strtoull(s, nullptr, 10);
  if (const char *p = std::getenv("KILN_CUDAEMU_POISON"); p && *p == '0')
    c.poison = false;
  if (const char *n = std::getenv("KILN_CUDAEMU_SMS"); n && *n)
    c.sms = std::max(1, std::atoi(n));
  return c;
}

// Read again at every launch, so that one process can run a kernel in
// several orders (tests/cudaemu/test_cudaemu.cpp does).
thread_local Config t_config = read_config();
const Config &config() { return t_config; }
void reload_config() { t_config = read_config(); }

struct Stats {
  std::atomic<long> modules{0}, launches{0}, blocks{0}, graph_launches{0};
  ~Stats() {
    if (const char *s = std::getenv("KILN_CUDAEMU_STATS"); s && *s == '1')
      std::fprintf(stderr,
                   "kiln cudaemu: %ld modules loaded, %ld kernel launches "
                   "(%ld blocks), %ld graph launches\n",
                   modules.load(), launches.load(), blocks.load(),
                   graph_launches.load());
  }
};
Stats g_stats;

// The device work trace (kiln_cudaemu_set_trace): one entry per kernel,
// device-to-device copy, memset and cuBLAS call, recorded when it runs
// (so a replayed graph records its work again), for tests that check what
// a compiled graph executes.
struct Trace {
  std::mutex mu;
  std::atomic<bool> on{false};
  std::vector<std::string> entries;
};
Trace g_trace;
void trace(const std::string &what) {
  if (!g_trace.on.load())
    return;
  std::lock_guard<std::mutex> l(g_trace.mu);
  g_trace.entries.push_back(what);
}

bool g_initialized = false;

// ---------------------------------------------------------------- memory

// A device allocation is its own mapping: 256-byte aligned (as cuMemAlloc
// guarantees) and ending at an inaccessible guard page, with the bytes
// between its end and the guard (the rounding to 256) filled with a canary.
// A kernel that writes past the end changes the canary (reported after the
// launch) or faults on the guard page (reported by the SIGSEGV handler,
// which then lets the process crash); freed allocations stay mapped
// without access for a while, so a use after free faults too.
struct Mapping {
  uintptr_t base = 0; // of the mapping
  size_t len = 0;     // of the mapping, guard page included
  size_t bytes = 0;   // asked for
  size_t padded = 0;  // rounded up to 256
};

constexpr unsigned char kCanary = 0xa5;

struct Memory {
  std::mutex mu;
  std::map<uintptr_t, size_t> device, host; // start -> bytes
  std::map<uintptr_t, Mapping> maps;        // device start -> its mapping
  std::vector<std::pair<uintptr_t, Mapping>> freed; // quarantine
};
Memory &memory() {
  static Memory *m = new Memory; // never destroyed: used at exit
  return *m;
}

size_t page_size() {
  static const size_t p = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return p;
}

thread_local const char *t_kernel = nullptr; // the kernel running here

// Best effort, in a signal handler: says which allocation a faulting
// address belongs to, then lets the fault take its course.
struct sigaction g_old_segv;
void on_segv(int sig, siginfo_t *si, void *ctx) {
  (void)ctx;
  auto a = reinterpret_cast<uintptr_t>(si->si_addr);
  Memory &m = memory();
  char buf[512];
  int n = 0;
  for (const auto &[start, mp] : m.maps)
    if (a >= start + mp.padded && a < mp.base + mp.len) {
      n = std::snprintf(buf, sizeof buf,
                        "kiln cudaemu: %s%s%saccess to 0x%llx, %llu bytes past "
                        "the end of the device allocation at 0x%llx of %zu "
                        "bytes (an illegal address on a GPU)\n",
                        t_kernel ? "kernel " : "", t_kernel ? t_kernel : "",
                        t_kernel ? ": " : "",
                        static_cast<unsigned long long>(a),
                        static_cast<unsigned long long>(a - start - mp.bytes),
                        static_cast<unsigned long long>(start), mp.bytes);
      break;
    }
  if (!n)
    for (const auto &[start, mp] : m.freed)
      if (a >= mp.base && a < mp.base + mp.len) {
        n = std::snprintf(buf, sizeof buf,
                          "kiln cudaemu: %s%s%saccess to 0x%llx in the freed "
                          "device allocation at 0x%llx of %zu bytes\n",
                          t_kernel ? "kernel " : "", t_kernel ? t_kernel : "",
                          t_kernel ? ": " : "",
                          static_cast<unsigned long long>(a),
                          static_cast<unsigned long long>(start), mp.bytes);
        break;
      }
  if (n > 0)
    (void)!write(2, buf, static_cast<size_t>(n));
  // Re-raise under the previous disposition: the access faults again.
  sigaction(sig, &g_old_segv, nullptr);
}

void install_segv_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_old_segv);
  });
}

// The first allocation whose canary a kernel overwrote, restored; "" when
// none.
std::string check_canaries() {
  Memory &m = memory();
  std::lock_guard<std::mutex> l(m.mu);
  for (const auto &[start, mp] : m.maps) {
    auto *pad = reinterpret_cast<unsigned char *>(start + mp.bytes);
    size_t n = mp.padded - mp.bytes;
    for (size_t i = 0; i < n; ++i)
      if (pad[i] != kCanary) {
        size_t last = i;
        for (size_t j = i; j < n; ++j)
          if (pad[j] != kCanary)
            last = j;
        std::memset(pad, kCanary, n);
        char b[300];
        std::snprintf(b, sizeof b,
                      "wrote bytes %zu..%zu past the end of the device "
                      "allocation at 0x%llx of %zu bytes (an illegal address "
                      "on a GPU)",
                      i, last, static_cast<unsigned long long>(start),
                      mp.bytes);
        return b;
      }
  }
  return "";
}

// True when [p, p + n) lies inside one live device allocation.
bool device_range(CUdeviceptr p, size_t n, std::string *why) {
  Memory &m = memory();
  std::lock_guard<std::mutex> l(m.mu);
  auto it = m.device.upper_bound(static_cast<uintptr_t>(p));
  if (it == m.device.begin()) {
    if (why)
      *why = "is not device memory";
    return false;
  }
  --it;
  uintptr_t end = it->first + it->second;
  if (p >= end) {
    if (why)
      *why = "is not device memory";
    return false;
  }
  if (n > end - p) {
    if (why) {
      char b[200];
      std::snprintf(b, sizeof b,
                    "runs %zu bytes past the end of its allocation of %zu "
                    "bytes",
                    static_cast<size_t>(p + n - end), it->second);
      *why = b;
    }
    return false;
  }
  return true;
}

CUresult check_device(CUdeviceptr p, size_t n, const char *what) {
  std::string why;
  if (n == 0 || device_range(p, n, &why))
    return CUDA_SUCCESS;
  return fail_with(CUDA_ERROR_INVALID_VALUE, "%s: device range 0x%llx + %zu %s",
                   what, static_cast<unsigned long long>(p), n, why.c_str());
}

// ---------------------------------------------------------------- streams

using Op = std::function<CUresult()>;

struct Stream {
  static constexpr uint32_t kMagic = 0x4b454d53; // "KEMS"
  uint32_t magic = kMagic;
  bool capturing = false, invalidated = false;
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
  std::thread::id capture_thread;
  std::vector<Op> ops;  // recorded while capturing
  std::vector<Op> work; // enqueued, not run yet (until a synchronisation)
};

// Streams are asynchronous, as on a GPU: work waits in the stream until
// the host synchronises with it (cuStreamSynchronize, cuCtxSynchronize,
// cuEventSynchronize, or an implicitly synchronising cuMemFree,
// cuMemFreeHost, cuModuleUnload), so a host that reads results or reuses
// a buffer before synchronising sees stale data, as it could on a GPU.
// The legacy (null) stream runs work at once; synchronous copies do not
// wait for the other streams (kiln's stream is non-blocking).
// KILN_CUDAEMU_SYNC=1 runs every operation when it is enqueued (errors then
// surface at the launch, not at the next synchronisation).
bool synchronous_streams() {
  static const bool sync = [] {
    const char *s = std::getenv("KILN_CUDAEMU_SYNC");
    return s && *s == '1';
  }();
  return sync;
}

std::mutex g_streams_mu;
std::vector<Stream *> &g_streams = *new std::vector<Stream *>; // live

// Runs a stream's pending work; the first failure drops the rest (as work
// after a fault never runs on a GPU) and is returned.
CUresult flush(Stream *s) {
  std::vector<Op> work;
  work.swap(s->work);
  for (Op &op : work)
    if (CUresult r = op())
      return r;
  return CUDA_SUCCESS;
}

CUresult flush_all() {
  std::vector<Stream *> all;
  {
    std::lock_guard<std::mutex> l(g_streams_mu);
    all = g_streams;
  }
  CUresult first = CUDA_SUCCESS;
  for (Stream *s : all)
    if (CUresult r = flush(s); r && !first)
      first = r;
  return first;
}

struct Graph {
  std::vector<Op> ops;
};
struct GraphExec {
  std::vector<Op> ops;
};

std::mutex g_capture_mu;
int g_global_captures = 0;                // streams capturing in global mode
thread_local Stream *t_capture = nullptr; // this thread's capturing stream

Stream *as_stream(CUstream s) {
  if (!s || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD)
    return nullptr;
  return reinterpret_cast<Stream *>(s);
}

bool valid_stream(CUstream s) {
  Stream *st = as_stream(s);
  return !st || st->magic == Stream::kMagic;
}

// A "potentially unsafe" call (allocation, free, synchronisation) while a
// capture is under way: fails and invalidates the capture, as the driver
// does in the global and thread-local capture modes.
CUresult capture_unsafe(const char *what) {
  Stream *s = t_capture;
  bool global;
  {
    std::lock_guard<std::mutex> l(g_capture_mu);
    global = g_global_captures > 0;
  }
  if (!s && !global)
    return CUDA_SUCCESS;
  if (s)
    s->invalidated = true;
  return fail_with(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                   "%s while a stream is being captured", what);
}

// True when [p, p + n) lies in pinned host memory (cuMemAllocHost).
bool pinned(const void *p, size_t n) {
  Memory &m = memory();
  std::lock_guard<std::mutex> l(m.mu);
  auto a = reinterpret_cast<uintptr_t>(p);
  auto it = m.host.upper_bound(a);
  if (it == m.host.begin())
    return false;
  --it;
  return a - it->first <= it->second && n <= it->second - (a - it->first);
}

bool capturing(CUstream s) {
  Stream *st = valid_stream(s) ? as_stream(s) : nullptr;
  return st && st->capturing;
}

// A copy between the device and pageable host memory cannot be captured.
CUresult capture_pageable(CUstream s, const char *what) {
  as_stream(s)->invalidated = true;
  return fail_with(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                   "%s with pageable host memory while the stream is being "
                   "captured (use cuMemAllocHost)",
                   what);
}

// Runs `op` now, or records it while the stream is being captured.
CUresult submit(CUstream hs, Op op) {
  if (!valid_stream(hs))
    return CUDA_ERROR_INVALID_HANDLE;
  Stream *s = as_stream(hs);
  if (s && s->capturing) {
    if (s->invalidated)
      return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    s->ops.push_back(std::move(op));
    return CUDA_SUCCESS;
  }
  if (s && !synchronous_streams()) {
    s->work.push_back(std::move(op));
    return CUDA_SUCCESS;
  }
  return op();
}

// ---------------------------------------------------------------- fibers

constexpr size_t kStack = 128 * 1024;

enum class FState { runnable, barrier, shfl, ballot, done };

struct Block;

struct Fiber {
  ucontext_t ctx;
  kiln_emu_builtins b;
  FState state = FState::runnable;
  int index = 0, warp = 0, lane = 0;
  // A pending shuffle or ballot.
  unsigned mask = 0;
  unsigned long long value = 0, result = 0;
  int arg = 0, kind = 0, width = 32;
};

struct Block {
  std::vector<Fiber> fibers;
  ucontext_t sched;
  const kiln_emu_kernel_info *kernel = nullptr;
  void **params = nullptr;
  std::string error;
};

struct FiberStacks {
  std::vector<char *> stacks;
  ~FiberStacks() {
    for (char *s : stacks)
      munmap(s, kStack);
  }
  char *get(size_t i) {
    while (stacks.size() <= i) {
      void *p = mmap(nullptr, kStack, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) {
        std::fprintf(stderr, "kiln cudaemu: cannot map a fiber stack\n");
        std::abort();
      }
      // A guard page at the low end catches a stack overflow.
      mprotect(p, 4096, PROT_NONE);
      stacks.push_back(static_cast<char *>(p));
    }
    return stacks[i];
  }
};

thread_local Block *t_block = nullptr;
thread_local Fiber *t_fiber = nullptr;
thread_local FiberStacks t_stacks;

void yield_to_scheduler() {
  Fiber *f = t_fiber;
  swapcontext(&f->ctx, &t_block->sched);
}

void fiber_main() {
  Fiber *f = t_fiber;
  Block *b = t_block;
  b->kernel->invoke(b->kernel->fn, b->params);
  f->state = FState::done;
  swapcontext(&f->ctx, &b->sched);
}

const kiln_emu_builtins *api_current() {
  if (!t_fiber) {
    std::fprintf(stderr, "kiln cudaemu: a CUDA built-in read outside a "
                         "kernel\n");
    std::abort();
  }
  return &t_fiber->b;
}

void api_syncthreads() {
  t_fiber->state = FState::barrier;
  yield_to_scheduler();
}

unsigned long long api_shfl(unsigned mask, unsigned long long bits, int arg,
                            int kind, int width) {
  Fiber *f = t_fiber;
  f->state = FState::shfl;
  f->mask = mask;
  f->value = bits;
  f->arg = arg;
  f->kind = kind;
  f->width = width;
  yield_to_scheduler();
  return f->result;
}

unsigned api_ballot(unsigned mask, int pred) {
  Fiber *f = t_fiber;
  f->state = FState::ballot;
  f->mask = mask;
  f->value = pred != 0;
  f->kind = -1;
  yield_to_scheduler();
  return static_cast<unsigned>(f->result);
}

const kiln_emu_api g_api = {KILN_CUDAEMU_ABI, api_current, api_syncthreads,
                            api_shfl, api_ballot};

const char *state_name(FState s) {
  switch (s) {
  case FState::runnable:
    return "running";
  case FState::barrier:
    return "waiting at __syncthreads";
  case FState::shfl:
    return "waiting at a warp shuffle";
  case FState::ballot:
    return "waiting at a warp vote";
  case FState::done:
    return "exited";
  }
  return "?";
}

std::string tid(const Fiber &f) {
  char b[64];
  std::snprintf(b, sizeof b, "(%u,%u,%u)", f.b.threadIdx.x, f.b.threadIdx.y,
                f.b.threadIdx.z);
  return b;
}

// The source lane of a shuffle, or -1 when the lane reads itself (out of
// the segment: the caller's own value).
int shfl_source(const Fiber &f) {
  int w = f.width, lane = f.lane, base = lane & ~(w - 1), idx = lane - base;
  switch (f.kind) {
  case kiln_emu_shfl_idx:
    return base + (f.arg & (w - 1));
  case kiln_emu_shfl_up:
    return idx - f.arg < 0 ? lane : lane - f.arg;
  case kiln_emu_shfl_down:
    return idx + f.arg >= w ? lane : lane + f.arg;
  case kiln_emu_shfl_xor: {
    int s = lane ^ f.arg;
    return s - base >= w || s < base ? lane : s;
  }
  }
  return lane;
}

// Resolves the warp rendezvous that are complete; returns false with
// b.error set when one can never complete. `progress` tells whether a
// fiber became runnable.
bool resolve_warps(Block &b, bool &progress) {
  size_t n = b.fibers.size();
  for (size_t w0 = 0; w0 < n; w0 += 32) {
    size_t w1 = std::min(n, w0 + 32);
    for (size_t i = w0; i < w1; ++i) {
      Fiber &f = b.fibers[i];
      if (f.state != FState::shfl && f.state != FState::ballot)
        continue;
      const char *what = f.state == FState::shfl ? "warp shuffle" : "warp vote";
      if (!(f.mask >> f.lane & 1u)) {
        b.error = "a " + std::string(what) + " by thread " + tid(f) +
                  " whose mask does not name its own lane";
        return false;
      }
      if (f.state == FState::shfl &&
          (f.width <= 0 || f.width > 32 || (f.width & (f.width - 1)))) {
        b.error = "a warp shuffle of width " + std::to_string(f.width) +
                  " (not a power of two up to 32)";
        return false;
      }
      for (int l = 0; l < 32; ++l) {
        if (!(f.mask >> l & 1u))
          continue;
        size_t j = w0 + static_cast<size_t>(l);
        char m[32];
        std::snprintf(m, sizeof m, "0x%08x", f.mask);
        if (j >= w1) {
          b.error = "a " + std::string(what) + " with mask " + m +
                    " by thread " + tid(f) + " names lane " +
                    std::to_string(l) + ", which is not a thread of the block";
          return false;
        }
        const Fiber &g = b.fibers[j];
        if (g.state != f.state || g.mask != f.mask ||
            (f.state == FState::shfl && g.kind != f.kind)) {
          if (g.state == FState::runnable)
            return true; // not all there yet (cannot happen after a pass)
          b.error =
              "a " + std::string(what) + " with mask " + m + " by thread " +
              tid(f) + " (warp " + std::to_string(f.warp) + ", lane " +
              std::to_string(f.lane) + ") waits for lane " + std::to_string(l) +
              ", thread " + tid(g) + ", which " +
              (g.state == f.state ? "is in a different " + std::string(what)
                                  : std::string(state_name(g.state)));
          return false;
        }
      }
    }
    // Every pending lane's partners are there: exchange.
    for (size_t i = w0; i < w1; ++i) {
      Fiber &f = b.fibers[i];
      if (f.state == FState::shfl) {
        int s = shfl_source(f);
        const Fiber &src = b.fibers[w0 + static_cast<size_t>(s)];
        if (!(f.mask >> s & 1u)) {
          char m[32];
          std::snprintf(m, sizeof m, "0x%08x", f.mask);
          b.error = "a warp shuffle by thread " + tid(f) + " reads lane " +
                    std::to_string(s) + ", which is not in its mask " + m +
                    " (undefined on a GPU)";
          return false;
        }
        f.result = src.value;
      } else if (f.state == FState::ballot) {
        unsigned r = 0;
        for (int l = 0; l < 32; ++l)
          if (f.mask >> l & 1u)
            r |= static_cast<unsigned>(b.fibers[w0 + l].value) << l;
        f.result = r;
      }
    }
    for (size_t i = w0; i < w1; ++i) {
      Fiber &f = b.fibers[i];
      if (f.state == FState::shfl || f.state == FState::ballot) {
        f.state = FState::runnable;
        progress = true;
      }
    }
  }
  return true;
}

// Runs one block to completion; false with b.error when it cannot.
bool run_block(Block &b, std::mt19937_64 &rng) {
  const Config &c = config();
  size_t n = b.fibers.size();
  for (size_t i = 0; i < n; ++i) {
    Fiber &f = b.fibers[i];
    f.state = FState::runnable;
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = t_stacks.get(i);
    f.ctx.uc_stack.ss_size = kStack;
    f.ctx.uc_link = nullptr;
    makecontext(&f.ctx, fiber_main, 0);
  }
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i)
    order[i] = i;
  if (c.order == Order::reverse)
    std::reverse(order.begin(), order.end());
  t_block = &b;
  for (;;) {
    if (c.order == Order::random)
      std::shuffle(order.begin(), order.end(), rng);
    for (size_t i : order) {
      Fiber &f = b.fibers[i];
      if (f.state != FState::runnable)
        continue;
      t_fiber = &f;
      swapcontext(&b.sched, &f.ctx);
      t_fiber = nullptr;
    }
    size_t done = 0, barrier = 0;
    for (const Fiber &f : b.fibers) {
      done += f.state == FState::done;
      barrier += f.state == FState::barrier;
    }
    if (done == n)
      return true;
    bool progress = false;
    if (!resolve_warps(b, progress))
      return false;
    if (progress)
      continue;
    // Only barriers (and exited threads) are left.
    if (barrier == n) {
      for (Fiber &f : b.fibers)
        f.state = FState::runnable;
      continue;
    }
    const Fiber *missing = nullptr;
    for (const Fiber &f : b.fibers)
      if (f.state != FState::barrier) {
        missing = &f;
        break;
      }
    b.error = "__syncthreads reached by " + std::to_string(barrier) + " of " +
              std::to_string(n) + " threads; thread " + tid(*missing) + " is " +
              state_name(missing->state) +
              " (a hang or undefined behaviour on a GPU)";
    return false;
  }
}

// ---------------------------------------------------------------- modules

struct Module {
  void *handle = nullptr;
  std::unordered_map<std::string, const kiln_emu_kernel_info *> kernels;
};

// The size of an ELF image: the furthest end of its headers, sections and
// segments.
size_t elf_size(const unsigned char *p) {
  if (std::memcmp(p, ELFMAG, SELFMAG) != 0 || p[EI_CLASS] != ELFCLASS64)
    return 0;
  Elf64_Ehdr eh;
  std::memcpy(&eh, p, sizeof eh);
  size_t end = sizeof eh;
  end = std::max<size_t>(end, eh.e_shoff + size_t{eh.e_shnum} * eh.e_shentsize);
  end = std::max<size_t>(end, eh.e_phoff + size_t{eh.e_phnum} * eh.e_phentsize);
  for (int i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh;
    std::memcpy(&sh, p + eh.e_shoff + static_cast<size_t>(i) * eh.e_shentsize,
                sizeof sh);
    if (sh.sh_type != SHT_NOBITS)
      end = std::max<size_t>(end, sh.sh_offset + sh.sh_size);
  }
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, p + eh.e_phoff + static_cast<size_t>(i) * eh.e_phentsize,
                sizeof ph);
    end = std::max<size_t>(end, ph.p_offset + ph.p_filesz);
  }
  return end;
}

struct Event {
  bool recorded = false;
  double ms = 0;
};

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch())
      .count();
}

struct Function {
  const kiln_emu_kernel_info *info;
};

char g_context_tag;
thread_local CUcontext t_ctx = nullptr;

CUresult need_init() {
  return g_initialized ? CUDA_SUCCESS : CUDA_ERROR_NOT_INITIALIZED;
}

// A launch with its parameters copied (as the driver copies them).
CUresult run_grid(const kiln_emu_kernel_info *k, const std::vector<char> &buf,
                  const std::vector<size_t> &offs, kiln_emu_dim3 grid,
                  kiln_emu_dim3 block) {
  reload_config();
  ++g_stats.launches;
  trace(std::string("kernel ") + k->name);
  t_kernel = k->name;
  std::vector<char> local = buf; // a kernel may modify its parameters
  std::vector<void *> params(offs.size());
  for (size_t i = 0; i < offs.size(); ++i)
    params[i] = local.data() + offs[i];
  Block b;
  b.kernel = k;
  b.params = params.data();
  size_t nthreads = size_t{block.x} * block.y * block.z;
  b.fibers.resize(nthreads);
  for (size_t i = 0; i < nthreads; ++i) {
    Fiber &f = b.fibers[i];
    f.index = static_cast<int>(i);
    f.warp = static_cast<int>(i / 32);
    f.lane = static_cast<int>(i % 32);
    f.b.threadIdx = {static_cast<unsigned>(i % block.x),
                     static_cast<unsigned>(i / block.x % block.y),
                     static_cast<unsigned>(i / (size_t{block.x} * block.y))};
    f.b.blockDim = block;
    f.b.gridDim = grid;
  }
  size_t nblocks = size_t{grid.x} * grid.y * grid.z;
  std::vector<size_t> border(nblocks);
  for (size_t i = 0; i < nblocks; ++i)
    border[i] = i;
  static std::atomic<uint64_t> launches{0};
  std::mt19937_64 rng(config().seed * 0x9e3779b97f4a7c15ull + launches++);
  if (config().order == Order::reverse)
    std::reverse(border.begin(), border.end());
  else if (config().order == Order::random)
    std::shuffle(border.begin(), border.end(), rng);
  for (size_t bi : border) {
    kiln_emu_dim3 bid = {static_cast<unsigned>(bi % grid.x),
                         static_cast<unsigned>(bi / grid.x % grid.y),
                         static_cast<unsigned>(bi / (size_t{grid.x} * grid.y))};
    for (Fiber &f : b.fibers)
      f.b.blockIdx = bid;
    ++g_stats.blocks;
    bool ok = run_block(b, rng);
    t_block = nullptr;
    if (!ok) {
      t_kernel = nullptr;
      return fail_with(CUDA_ERROR_LAUNCH_FAILED,
                       "kernel %s, block (%u,%u,%u) of (%u,%u,%u) x "
                       "(%u,%u,%u) threads: %s",
                       k->name, bid.x, bid.y, bid.z, grid.x, grid.y, grid.z,
                       block.x, block.y, block.z, b.error.c_str());
    }
  }
  t_kernel = nullptr;
  if (std::string bad = check_canaries(); !bad.empty())
    return fail_with(CUDA_ERROR_ILLEGAL_ADDRESS,
                     "kernel %s, grid (%u,%u,%u) x (%u,%u,%u) threads: %s",
                     k->name, grid.x, grid.y, grid.z, block.x, block.y, block.z,
                     bad.c_str());
  return CUDA_SUCCESS;
}

} // namespace

// ================================================================ the API

KILN_EMU_EXPORT CUresult CUDAAPI cuInit(unsigned int flags) {
  if (flags != 0)
    return CUDA_ERROR_INVALID_VALUE;
  (void)config();
  g_initialized = true;
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuGetErrorString(CUresult error,
                                                  const char **str) {
  if (!str)
    return CUDA_ERROR_INVALID_VALUE;
  {
    std::lock_guard<std::mutex> l(g_msg_mu);
    if (error == g_msg_code && !g_msg.empty()) {
      *str = g_msg.c_str();
      return CUDA_SUCCESS;
    }
  }
  for (const ErrorName &e : kErrors)
    if (e.code == error) {
      *str = e.text;
      return CUDA_SUCCESS;
    }
  *str = nullptr;
  return CUDA_ERROR_INVALID_VALUE;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuGetErrorName(CUresult error,
                                                const char **str) {
  if (!str)
    return CUDA_ERROR_INVALID_VALUE;
  for (const ErrorName &e : kErrors)
    if (e.code == error) {
      *str = e.name;
      return CUDA_SUCCESS;
    }
  *str = nullptr;
  return CUDA_ERROR_INVALID_VALUE;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuDriverGetVersion(int *v) {
  if (!v)
    return CUDA_ERROR_INVALID_VALUE;
  *v = 13000;
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuDeviceGetCount(int *count) {
  if (CUresult r = need_init())
    return r;
  if (!count)
    return CUDA_ERROR_INVALID_VALUE;
  *count = 1;
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuDeviceGet(CUdevice *dev, int ordinal) {
  if (CUresult r = need_init())
    return r;
  if (!dev)
    return CUDA_ERROR_INVALID_VALUE;
  if (ordinal != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  *dev = 0;
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuDeviceGetName(char *name, int len,
                                                 CUdevice dev) {
  if (!name || len <= 0)
    return CUDA_ERROR_INVALID_VALUE;
  if (dev != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  std::snprintf(name, static_cast<size_t>(len), "%s",
                "kiln cudaemu (emulated on the CPU)");
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuDeviceGetAttribute(int *v,
                                                      CUdevice_attribute a,
                                                      CUdevice dev) {
  if (!v)
    return CUDA_ERROR_INVALID_VALUE;
  if (dev != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  switch (a) {
  case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT:
    // A failing query, for kiln's test that it does not go unnoticed (read
    // at each call, unlike the configuration).
    if (const char *f = std::getenv("KILN_CUDAEMU_FAIL_SM_COUNT");
        f && *f == '1')
      return CUDA_ERROR_NOT_SUPPORTED;
    *v = config().sms;
    return CUDA_SUCCESS;
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR:
    *v = 9;
    return CUDA_SUCCESS;
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR:
    *v = 0;
    return CUDA_SUCCESS;
  case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
    *v = 1024;
    return CUDA_SUCCESS;
  case CU_DEVICE_ATTRIBUTE_WARP_SIZE:
    *v = 32;
    return CUDA_SUCCESS;
  case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK:
    *v = 48 * 1024;
    return CUDA_SUCCESS;
  default:
    return fail_with(CUDA_ERROR_INVALID_VALUE,
                     "cuDeviceGetAttribute: attribute %d is not emulated",
                     static_cast<int>(a));
  }
}

KILN_EMU_EXPORT CUresult CUDAAPI cuDevicePrimaryCtxRetain(CUcontext *ctx,
                                                          CUdevice dev) {
  if (CUresult r = need_init())
    return r;
  if (!ctx)
    return CUDA_ERROR_INVALID_VALUE;
  if (dev != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  *ctx = reinterpret_cast<CUcontext>(&g_context_tag);
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuDevicePrimaryCtxRelease(CUdevice dev) {
  return dev == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuCtxSetCurrent(CUcontext ctx) {
  if (ctx && ctx != reinterpret_cast<CUcontext>(&g_context_tag))
    return CUDA_ERROR_INVALID_CONTEXT;
  t_ctx = ctx;
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuCtxSynchronize() {
  if (CUresult r = capture_unsafe("cuCtxSynchronize"))
    return r;
  return flush_all();
}

KILN_EMU_EXPORT CUresult CUDAAPI cuMemAlloc(CUdeviceptr *p, size_t bytes) {
  if (CUresult r = need_init())
    return r;
  if (!p || bytes == 0)
    return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = capture_unsafe("cuMemAlloc"))
    return r;
  install_segv_handler();
  Mapping mp;
  mp.bytes = bytes;
  mp.padded = (bytes + 255) / 256 * 256;
  size_t body = (mp.padded + page_size() - 1) / page_size() * page_size();
  mp.len = body + page_size();
  void *base = mmap(nullptr, mp.len, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED)
    return CUDA_ERROR_OUT_OF_MEMORY;
  mp.base = reinterpret_cast<uintptr_t>(base);
  mprotect(reinterpret_cast<char *>(base) + body, page_size(), PROT_NONE);
  uintptr_t start = mp.base + body - mp.padded;
  if (config().poison)
    std::memset(reinterpret_cast<void *>(start), 0xff, bytes);
  std::memset(reinterpret_cast<void *>(start + bytes), kCanary,
              mp.padded - bytes);
  {
    std::lock_guard<std::mutex> l(memory().mu);
    memory().device[start] = bytes;
    memory().maps[start] = mp;
  }
  *p = static_cast<CUdeviceptr>(start);
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuMemFree(CUdeviceptr p) {
  if (p == 0)
    return CUDA_SUCCESS;
  if (CUresult r = capture_unsafe("cuMemFree"))
    return r;
  flush_all(); // cuMemFree synchronises the device
  Memory &m = memory();
  std::lock_guard<std::mutex> l(m.mu);
  auto it = m.device.find(static_cast<uintptr_t>(p));
  if (it == m.device.end())
    return fail_with(CUDA_ERROR_INVALID_VALUE,
                     "cuMemFree(0x%llx): not the start of a live device "
                     "allocation",
                     static_cast<unsigned long long>(p));
  m.device.erase(it);
  auto mit = m.maps.find(static_cast<uintptr_t>(p));
  Mapping mp = mit->second;
  m.maps.erase(mit);
  // Quarantine: no access, no memory, the addresses kept for a while.
  void *base = reinterpret_cast<void *>(mp.base);
  madvise(base, mp.len, MADV_DONTNEED);
  mprotect(base, mp.len, PROT_NONE);
  m.freed.emplace_back(static_cast<uintptr_t>(p), mp);
  if (m.freed.size() > 4096) {
    munmap(reinterpret_cast<void *>(m.freed.front().second.base),
           m.freed.front().second.len);
    m.freed.erase(m.freed.begin());
  }
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuMemAllocHost(void **p, size_t bytes) {
  if (CUresult r = need_init())
    return r;
  if (!p || bytes == 0)
    return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = capture_unsafe("cuMemAllocHost"))
    return r;
  void *m = std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
  if (!m)
    return CUDA_ERROR_OUT_OF_MEMORY;
  {
    std::lock_guard<std::mutex> l(memory().mu);
    memory().host[reinterpret_cast<uintptr_t>(m)] = bytes;
  }
  *p = m;
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuMemFreeHost(void *p) {
  if (CUresult r = capture_unsafe("cuMemFreeHost"))
    return r;
  flush_all();
  {
    std::lock_guard<std::mutex> l(memory().mu);
    auto it = memory().host.find(reinterpret_cast<uintptr_t>(p));
    if (it == memory().host.end())
      return fail_with(CUDA_ERROR_INVALID_VALUE,
                       "cuMemFreeHost(%p): not pinned host memory", p);
    memory().host.erase(it);
  }
  std::free(p);
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuMemcpyHtoD(CUdeviceptr dst, const void *src,
                                              size_t n) {
  if (CUresult r = check_device(dst, n, "cuMemcpyHtoD destination"))
    return r;
  if (n)
    std::memcpy(reinterpret_cast<void *>(dst), src, n);
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuMemcpyDtoH(void *dst, CUdeviceptr src,
                                              size_t n) {
  if (CUresult r = check_device(src, n, "cuMemcpyDtoH source"))
    return r;
  if (n)
    std::memcpy(dst, reinterpret_cast<const void *>(src), n);
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuMemcpyHtoDAsync(CUdeviceptr dst,
                                                   const void *src, size_t n,
                                                   CUstream s) {
  if (CUresult r = check_device(dst, n, "cuMemcpyHtoDAsync destination"))
    return r;
  if (n && !pinned(src, n)) {
    // From pageable memory the driver stages the bytes before returning:
    // the caller may reuse the source at once.
    if (capturing(s))
      return capture_pageable(s, "cuMemcpyHtoDAsync");
    auto bytes = std::make_shared<std::vector<char>>(
        static_cast<const char *>(src), static_cast<const char *>(src) + n);
    return submit(s, [=] {
      std::memcpy(reinterpret_cast<void *>(dst), bytes->data(), n);
      return CUDA_SUCCESS;
    });
  }
  return submit(s, [=] {
    if (n)
      std::memcpy(reinterpret_cast<void *>(dst), src, n);
    return CUDA_SUCCESS;
  });
}

KILN_EMU_EXPORT CUresult CUDAAPI cuMemcpyDtoHAsync(void *dst, CUdeviceptr src,
                                                   size_t n, CUstream s) {
  if (CUresult r = check_device(src, n, "cuMemcpyDtoHAsync source"))
    return r;
  if (n && !pinned(dst, n)) {
    // To pageable memory the copy completes before the call returns.
    if (capturing(s))
      return capture_pageable(s, "cuMemcpyDtoHAsync");
    if (!valid_stream(s))
      return CUDA_ERROR_INVALID_HANDLE;
    if (Stream *st = as_stream(s))
      if (CUresult r = flush(st))
        return r;
    std::memcpy(dst, reinterpret_cast<const void *>(src), n);
    return CUDA_SUCCESS;
  }
  return submit(s, [=] {
    if (n)
      std::memcpy(dst, reinterpret_cast<const void *>(src), n);
    return CUDA_SUCCESS;
  });
}

KILN_EMU_EXPORT CUresult CUDAAPI cuMemcpyDtoDAsync(CUdeviceptr dst,
                                                   CUdeviceptr src, size_t n,
                                                   CUstream s) {
  if (CUresult r = check_device(dst, n, "cuMemcpyDtoDAsync destination"))
    return r;
  if (CUresult r = check_device(src, n, "cuMemcpyDtoDAsync source"))
    return r;
  return submit(s, [=] {
    trace("memcpy_dtod");
    if (n)
      std::memmove(reinterpret_cast<void *>(dst),
                   reinterpret_cast<const void *>(src), n);
    return CUDA_SUCCESS;
  });
}

KILN_EMU_EXPORT CUresult CUDAAPI cuMemsetD8Async(CUdeviceptr dst,
                                                 unsigned char v, size_t n,
                                                 CUstream s) {
  if (CUresult r = check_device(dst, n, "cuMemsetD8Async destination"))
    return r;
  return submit(s, [=] {
    trace("memset");
    if (n)
      std::memset(reinterpret_cast<void *>(dst), v, n);
    return CUDA_SUCCESS;
  });
}

KILN_EMU_EXPORT CUresult CUDAAPI cuModuleLoadData(CUmodule *mod,
                                                  const void *image) {
  if (CUresult r = need_init())
    return r;
  if (!mod || !image)
    return CUDA_ERROR_INVALID_VALUE;
  const auto *p = static_cast<const unsigned char *>(image);
  size_t size = elf_size(p);
  if (size == 0)
    return fail_with(CUDA_ERROR_INVALID_IMAGE,
                     "cuModuleLoadData: the image is not a 64-bit ELF shared "
                     "object built by the emulated NVRTC");
  const char *tmp = std::getenv("TMPDIR");
  std::string path =
      std::string(tmp && *tmp ? tmp : "/tmp") + "/kiln_cudaemu_XXXXXX.so";
  int fd = mkstemps(path.data(), 3);
  if (fd < 0)
    return fail_with(CUDA_ERROR_UNKNOWN, "cannot create %s", path.c_str());
  size_t off = 0;
  while (off < size) {
    ssize_t w = write(fd, p + off, size - off);
    if (w <= 0) {
      close(fd);
      unlink(path.c_str());
      return fail_with(CUDA_ERROR_UNKNOWN, "cannot write %s", path.c_str());
    }
    off += static_cast<size_t>(w);
  }
  close(fd);
  void *h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  unlink(path.c_str());
  if (!h)
    return fail_with(CUDA_ERROR_INVALID_IMAGE, "cuModuleLoadData: %s",
                     dlerror());
  auto *api = reinterpret_cast<const kiln_emu_api **>(dlsym(h, "kiln_emu"));
  auto *list = reinterpret_cast<int (*)(const kiln_emu_kernel_info **)>(
      dlsym(h, "kiln_emu_kernels"));
  if (!api || !list) {
    dlclose(h);
    return fail_with(CUDA_ERROR_INVALID_IMAGE,
                     "cuModuleLoadData: the image lacks kiln_emu or "
                     "kiln_emu_kernels (not built by the emulated NVRTC)");
  }
  *api = &g_api;
  ++g_stats.modules;
  auto *m = new Module;
  m->handle = h;
  const kiln_emu_kernel_info *ks = nullptr;
  int n = list(&ks);
  for (int i = 0; i < n; ++i)
    m->kernels[ks[i].name] = &ks[i];
  *mod = reinterpret_cast<CUmodule>(m);
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuModuleUnload(CUmodule mod) {
  if (!mod)
    return CUDA_ERROR_INVALID_HANDLE;
  auto *m = reinterpret_cast<Module *>(mod);
  flush_all(); // pending launches may run its kernels
  dlclose(m->handle);
  delete m;
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuModuleGetFunction(CUfunction *f,
                                                     CUmodule mod,
                                                     const char *name) {
  if (!f || !mod || !name)
    return CUDA_ERROR_INVALID_VALUE;
  auto *m = reinterpret_cast<Module *>(mod);
  auto it = m->kernels.find(name);
  if (it == m->kernels.end())
    return fail_with(CUDA_ERROR_NOT_FOUND,
                     "cuModuleGetFunction: no kernel %s in the module", name);
  *f = reinterpret_cast<CUfunction>(new Function{it->second});
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuLaunchKernel(CUfunction f, unsigned gx,
                                                unsigned gy, unsigned gz,
                                                unsigned bx, unsigned by,
                                                unsigned bz, unsigned shmem,
                                                CUstream s, void **params,
                                                void **extra) {
  if (!f)
    return CUDA_ERROR_INVALID_HANDLE;
  const kiln_emu_kernel_info *k = reinterpret_cast<Function *>(f)->info;
  if (extra)
    return fail_with(CUDA_ERROR_NOT_SUPPORTED,
                     "cuLaunchKernel(%s): `extra` is not emulated", k->name);
  if (shmem)
    return fail_with(CUDA_ERROR_NOT_SUPPORTED,
                     "cuLaunchKernel(%s): dynamic shared memory is not "
                     "emulated",
                     k->name);
  if (!gx || !gy || !gz || !bx || !by || !bz || gy > 65535 || gz > 65535 ||
      bx > 1024 || by > 1024 || bz > 64 || size_t{bx} * by * bz > 1024)
    return fail_with(CUDA_ERROR_INVALID_VALUE,
                     "cuLaunchKernel(%s): invalid grid (%u,%u,%u) or block "
                     "(%u,%u,%u)",
                     k->name, gx, gy, gz, bx, by, bz);
  if (k->nparams && !params)
    return fail_with(CUDA_ERROR_INVALID_VALUE,
                     "cuLaunchKernel(%s): no parameters for %d", k->name,
                     k->nparams);
  std::vector<char> buf;
  std::vector<size_t> offs;
  for (int i = 0; i < k->nparams; ++i) {
    size_t a = std::min<size_t>(k->sizes[i], 8);
    size_t o = (buf.size() + a - 1) / a * a;
    buf.resize(o + k->sizes[i]);
    std::memcpy(buf.data() + o, params[i], k->sizes[i]);
    offs.push_back(o);
  }
  kiln_emu_dim3 grid{gx, gy, gz}, block{bx, by, bz};
  return submit(s, [=] { return run_grid(k, buf, offs, grid, block); });
}

KILN_EMU_EXPORT CUresult CUDAAPI cuStreamCreate(CUstream *s,
                                                unsigned int flags) {
  if (CUresult r = need_init())
    return r;
  if (!s || (flags & ~1u))
    return CUDA_ERROR_INVALID_VALUE;
  auto *st = new Stream;
  {
    std::lock_guard<std::mutex> l(g_streams_mu);
    g_streams.push_back(st);
  }
  *s = reinterpret_cast<CUstream>(st);
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuStreamDestroy(CUstream s) {
  Stream *st = as_stream(s);
  if (!st || st->magic != Stream::kMagic)
    return CUDA_ERROR_INVALID_HANDLE;
  flush(st); // its pending work still runs
  {
    std::lock_guard<std::mutex> l(g_streams_mu);
    g_streams.erase(std::find(g_streams.begin(), g_streams.end(), st));
  }
  st->magic = 0;
  delete st;
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuStreamSynchronize(CUstream s) {
  if (!valid_stream(s))
    return CUDA_ERROR_INVALID_HANDLE;
  Stream *st = as_stream(s);
  if (st && st->capturing) {
    st->invalidated = true;
    return fail_with(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
                     "cuStreamSynchronize of a stream that is being "
                     "captured");
  }
  return st ? flush(st) : CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuStreamBeginCapture(CUstream s,
                                                      CUstreamCaptureMode m) {
  if (!valid_stream(s))
    return CUDA_ERROR_INVALID_HANDLE;
  Stream *st = as_stream(s);
  if (!st)
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  if (st->capturing)
    return CUDA_ERROR_ILLEGAL_STATE;
  st->capturing = true;
  st->invalidated = false;
  st->mode = m;
  st->capture_thread = std::this_thread::get_id();
  st->ops.clear();
  if (m == CU_STREAM_CAPTURE_MODE_GLOBAL) {
    std::lock_guard<std::mutex> l(g_capture_mu);
    ++g_global_captures;
  } else if (m == CU_STREAM_CAPTURE_MODE_THREAD_LOCAL) {
    t_capture = st;
  }
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuStreamEndCapture(CUstream s, CUgraph *g) {
  if (!valid_stream(s) || !g)
    return CUDA_ERROR_INVALID_VALUE;
  Stream *st = as_stream(s);
  if (!st || !st->capturing)
    return CUDA_ERROR_ILLEGAL_STATE;
  if (st->capture_thread != std::this_thread::get_id() &&
      st->mode != CU_STREAM_CAPTURE_MODE_RELAXED)
    return CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD;
  st->capturing = false;
  if (st->mode == CU_STREAM_CAPTURE_MODE_GLOBAL) {
    std::lock_guard<std::mutex> l(g_capture_mu);
    --g_global_captures;
  } else if (t_capture == st) {
    t_capture = nullptr;
  }
  std::vector<Op> ops = std::move(st->ops);
  st->ops.clear();
  if (st->invalidated) {
    *g = nullptr;
    return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  }
  *g = reinterpret_cast<CUgraph>(new Graph{std::move(ops)});
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuGraphInstantiateWithFlags(
    CUgraphExec *e, CUgraph g, unsigned long long flags) {
  if (!e || !g || flags)
    return CUDA_ERROR_INVALID_VALUE;
  *e = reinterpret_cast<CUgraphExec>(
      new GraphExec{reinterpret_cast<Graph *>(g)->ops});
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuGraphLaunch(CUgraphExec e, CUstream s) {
  if (!e)
    return CUDA_ERROR_INVALID_VALUE;
  ++g_stats.graph_launches;
  for (const Op &op : reinterpret_cast<GraphExec *>(e)->ops)
    if (CUresult r = submit(s, op))
      return r;
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuGraphExecDestroy(CUgraphExec e) {
  if (!e)
    return CUDA_ERROR_INVALID_VALUE;
  delete reinterpret_cast<GraphExec *>(e);
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuGraphDestroy(CUgraph g) {
  if (!g)
    return CUDA_ERROR_INVALID_VALUE;
  delete reinterpret_cast<Graph *>(g);
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuEventCreate(CUevent *e, unsigned flags) {
  if (!e)
    return CUDA_ERROR_INVALID_VALUE;
  (void)flags;
  *e = reinterpret_cast<CUevent>(new Event);
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuEventDestroy(CUevent e) {
  if (!e)
    return CUDA_ERROR_INVALID_HANDLE;
  flush_all(); // a pending record still writes it
  delete reinterpret_cast<Event *>(e);
  return CUDA_SUCCESS;
}

KILN_EMU_EXPORT CUresult CUDAAPI cuEventRecord(CUevent e, CUstream s) {
  if (!e)
    return CUDA_ERROR_INVALID_HANDLE;
  auto *ev = reinterpret_cast<Event *>(e);
  return submit(s, [ev] {
    ev->recorded = true;
    ev->ms = now_ms();
    return CUDA_SUCCESS;
  });
}

KILN_EMU_EXPORT CUresult CUDAAPI cuEventSynchronize(CUevent e) {
  if (!e)
    return CUDA_ERROR_INVALID_HANDLE;
  return flush_all(); // a superset of the work before the event
}

KILN_EMU_EXPORT CUresult CUDAAPI cuEventElapsedTime(float *ms, CUevent a,
                                                    CUevent b) {
  if (!ms || !a || !b)
    return CUDA_ERROR_INVALID_VALUE;
  auto *ea = reinterpret_cast<Event *>(a), *eb = reinterpret_cast<Event *>(b);
  if (!ea->recorded || !eb->recorded)
    return CUDA_ERROR_NOT_READY; // recorded, not reached yet (or never)
  *ms = static_cast<float>(eb->ms - ea->ms);
  return CUDA_SUCCESS;
}

namespace {

struct ProcEntry {
  const char *name;
  void *fn;
};

#define KILN_EMU_PROC(name) {#name, reinterpret_cast<void *>(&name)},
const ProcEntry kProcs[] = {
    KILN_EMU_PROC(cuInit) KILN_EMU_PROC(cuGetErrorString) KILN_EMU_PROC(
        cuGetErrorName) KILN_EMU_PROC(cuDriverGetVersion) KILN_EMU_PROC(cuDeviceGetCount)
        KILN_EMU_PROC(cuDeviceGet) KILN_EMU_PROC(cuDeviceGetName) KILN_EMU_PROC(
            cuDeviceGetAttribute) KILN_EMU_PROC(cuDevicePrimaryCtxRetain)
            KILN_EMU_PROC(cuDevicePrimaryCtxRelease) KILN_EMU_PROC(
                cuCtxSetCurrent) KILN_EMU_PROC(cuCtxSynchronize)
                KILN_EMU_PROC(cuMemAlloc) KILN_EMU_PROC(cuMemFree) KILN_EMU_PROC(
                    cuMemAllocHost) KILN_EMU_PROC(cuMemFreeHost)
                    KILN_EMU_PROC(cuMemcpyHtoD) KILN_EMU_PROC(
                        cuMemcpyDtoH) KILN_EMU_PROC(cuMemcpyHtoDAsync)
                        KILN_EMU_PROC(cuMemcpyDtoHAsync) KILN_EMU_PROC(
                            cuMemcpyDtoDAsync) KILN_EMU_PROC(cuMemsetD8Async)
                            KILN_EMU_PROC(cuModuleLoadData) KILN_EMU_PROC(
                                cuModuleUnload) KILN_EMU_PROC(cuModuleGetFunction)
                                KILN_EMU_PROC(cuLaunchKernel) KILN_EMU_PROC(
                                    cuStreamCreate) KILN_EMU_PROC(cuStreamDestroy)
                                    KILN_EMU_PROC(cuStreamSynchronize) KILN_EMU_PROC(
                                        cuStreamBeginCapture)
                                        KILN_EMU_PROC(cuStreamEndCapture) KILN_EMU_PROC(
                                            cuGraphInstantiateWithFlags)
                                            KILN_EMU_PROC(cuGraphLaunch) KILN_EMU_PROC(
                                                cuGraphExecDestroy)
                                                KILN_EMU_PROC(cuGraphDestroy) KILN_EMU_PROC(
                                                    cuEventCreate)
                                                    KILN_EMU_PROC(
                                                        cuEventDestroy)
                                                        KILN_EMU_PROC(
                                                            cuEventRecord)
                                                            KILN_EMU_PROC(
                                                                cuEventSynchronize)
                                                                KILN_EMU_PROC(
                                                                    cuEventElapsedTime)};
#undef KILN_EMU_PROC

} // namespace

KILN_EMU_EXPORT CUresult CUDAAPI
cuGetProcAddress_v2(const char *symbol, void **fn, int version,
                    cuuint64_t flags, CUdriverProcAddressQueryResult *status) {
  (void)flags;
  if (!symbol || !fn)
    return CUDA_ERROR_INVALID_VALUE;
  if (version > 13000 + 999) {
    if (status)
      *status = CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
    *fn = nullptr;
    return CUDA_ERROR_NOT_FOUND;
  }
  for (const ProcEntry &p : kProcs)
    if (std::strcmp(p.name, symbol) == 0) {
      *fn = p.fn;
      if (status)
        *status = CU_GET_PROC_ADDRESS_SUCCESS;
      return CUDA_SUCCESS;
    }
  *fn = nullptr;
  if (status)
    *status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  return CUDA_ERROR_NOT_FOUND;
}

// For the emulated cuBLAS: enqueue on a stream (recorded while capturing)
// and check device ranges.
KILN_EMU_EXPORT CUresult kiln_cudaemu_submit(CUstream s,
                                             std::function<CUresult()> *op) {
  return submit(s, std::move(*op));
}

// The work trace: `on` starts (clearing it) or stops recording; `take`
// moves the entries out; `record` adds one (the emulated cuBLAS's calls).
KILN_EMU_EXPORT void kiln_cudaemu_set_trace(int on) {
  std::lock_guard<std::mutex> l(g_trace.mu);
  if (on)
    g_trace.entries.clear();
  g_trace.on = on != 0;
}

KILN_EMU_EXPORT void kiln_cudaemu_take_trace(std::vector<std::string> *out) {
  std::lock_guard<std::mutex> l(g_trace.mu);
  *out = std::move(g_trace.entries);
  g_trace.entries.clear();
}

KILN_EMU_EXPORT void kiln_cudaemu_record(const char *what) { trace(what); }

KILN_EMU_EXPORT int kiln_cudaemu_device_range(CUdeviceptr p, size_t n,
                                              std::string *why) {
  return n == 0 || device_range(p, n, why);
}
