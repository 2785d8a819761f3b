// One fork-join thread pool for the CPU backend: the calling thread plus
// size()-1 workers, which sleep between launches. How work is split never
// depends on the pool's size, so results are bitwise the same for any
// thread count (GEMMs too: runtime/cpu_host_ops.h).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln {

class ThreadPool {
public:
  // `threads` counts the caller; 0 means every core (or KILN_NUM_THREADS).
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) on disjoint chunks covering [0, work), each of at
  // least `grain` items (the last may be shorter), on the caller and the
  // workers; returns when all are done. The chunk boundaries depend only on
  // `work` and `grain` (at most kMaxChunks chunks), not on the pool's size:
  // with one thread, or when called from inside a worker, the same chunks
  // run in order on the caller. fn must not throw.
  void parallel_for(int64_t work, int64_t grain,
                    const std::function<void(int64_t, int64_t)> &fn);
  static constexpr int64_t kMaxChunks = 64;

  // The process-wide pool (every core, or KILN_NUM_THREADS).
  static ThreadPool &global();

private:
  struct Job {
    const std::function<void(int64_t, int64_t)> *fn;
    int64_t work, chunk, nchunks;
    std::atomic<int64_t> next{0};
    // Workers inside run(): incremented under mu_ (so none joins after the
    // job is withdrawn), decremented without it when a worker is done.
    std::atomic<int> users{0};
  };
  void worker();
  static void run(Job &j);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::mutex launch_mu_; // one job at a time
  std::condition_variable wake_, done_;
  Job *job_ = nullptr;
  uint64_t gen_ = 0;
  bool stop_ = false;
  // gen_ and stop_ as seen without the lock, for the spin before a sleep.
  std::atomic<uint64_t> gen_seen_{0};
  std::atomic<bool> stopping_{false};
};

} // namespace kiln
