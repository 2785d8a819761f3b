#include "runtime/cpu_thread_pool.h"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace kiln {

namespace {
thread_local bool in_worker = false;
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

void ThreadPool::worker() {
  in_worker = true;
  uint64_t seen = 0;
  for (;;) {
    Job *j;
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
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (--j->users == 0)
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
  }
  wake_.notify_all();
  in_worker = true; // a nested parallel_for inside fn runs inline
  run(j);
  in_worker = false;
  std::unique_lock<std::mutex> lk(mu_);
  job_ = nullptr;
  done_.wait(lk, [&] { return j.users == 0; });
}

} // namespace kiln
