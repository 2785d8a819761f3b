#include "runtime/cpu_thread_pool.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>

namespace kiln {

namespace {
thread_local bool in_worker = false;
constexpr int kSpinMicros = 50;
} // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) {
    const char *env = std::getenv("KILN_NUM_THREADS");
    threads = env ? std::atoi(env) : 0;
  }
  if (threads <= 0)
    threads =
        static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < threads; ++i)
    workers_.emplace_back([this] { worker(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    stopping_.store(true, std::memory_order_release);
  }
  wake_.notify_all();
  for (std::thread &t : workers_)
    t.join();
}

void ThreadPool::run(Job &j) {
  for (;;) {
    int64_t c = j.next.fetch_add(1, std::memory_order_relaxed);
    if (c >= j.nchunks)
      return;
    int64_t b = c * j.chunk;
    (*j.fn)(b, std::min(j.work, b + j.chunk));
  }
}

// Spins until `ready` or about `us` microseconds pass. The launches of a
// step come microseconds apart, and a thread put to sleep on a condition
// variable takes tens of microseconds to wake (more on a busy machine): a
// short spin before sleeping keeps a step's launches from paying that each
// time, and costs nothing once the step is over.
template <typename F> bool spin_until(F ready, int us) {
  auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  for (int i = 0;; ++i) {
    if (ready())
      return true;
    if ((i & 63) == 63 && std::chrono::steady_clock::now() >= until)
      return false;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
}

void ThreadPool::worker() {
  in_worker = true;
  uint64_t seen = 0;
  for (;;) {
    Job *j;
    spin_until(
        [&] {
          return gen_seen_.load(std::memory_order_acquire) != seen ||
                 stopping_.load(std::memory_order_acquire);
        },
        kSpinMicros);
    {
      std::unique_lock<std::mutex> lk(mu_);
      wake_.wait(lk, [&] { return stop_ || (job_ && gen_ != seen); });
      if (stop_)
        return;
      seen = gen_;
      j = job_;
      ++j->users;
    }
    run(*j);
    // The last one out wakes the caller if it went to sleep; j may be gone
    // once users reaches 0, so nothing touches it after.
    if (j->users.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lk(mu_);
      done_.notify_all();
    }
  }
}

void ThreadPool::parallel_for(int64_t work, int64_t grain,
                              const std::function<void(int64_t, int64_t)> &fn) {
  if (work <= 0)
    return;
  // The chunks depend on (work, grain) only, never on the pool's size, and
  // the inline path runs the same chunks in order: a kernel's result for an
  // item may depend on where its range starts and ends (a vectorized body
  // and a scalar remainder round exp or log differently), so this keeps
  // results bitwise the same for any thread count.
  grain = std::max<int64_t>(grain, 1);
  int64_t nchunks = std::min((work + grain - 1) / grain, kMaxChunks);
  int64_t chunk = (work + nchunks - 1) / nchunks;
  nchunks = (work + chunk - 1) / chunk;
  if (nchunks <= 1 || workers_.empty() || in_worker) {
    for (int64_t b = 0; b < work; b += chunk)
      fn(b, std::min(work, b + chunk));
    return;
  }
  std::lock_guard<std::mutex> launch(launch_mu_);
  Job j;
  j.fn = &fn;
  j.work = work;
  j.chunk = chunk;
  j.nchunks = nchunks;
  {
    std::lock_guard<std::mutex> lk(mu_);
    job_ = &j;
    ++gen_;
    gen_seen_.store(gen_, std::memory_order_release);
  }
  wake_.notify_all();
  in_worker = true; // a nested parallel_for inside fn runs inline
  run(j);
  in_worker = false;
  std::unique_lock<std::mutex> lk(mu_);
  job_ = nullptr; // no worker joins from here on
  lk.unlock();
  if (spin_until([&] { return j.users.load(std::memory_order_acquire) == 0; },
                 kSpinMicros))
    return;
  lk.lock();
  done_.wait(lk, [&] { return j.users.load(std::memory_order_acquire) == 0; });
}

} // namespace kiln
