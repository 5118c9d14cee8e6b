// A fixed pool of threads for the forward pass. run(fn) calls fn(t) on every thread t (the caller
// is thread 0) and returns when all are done. Workers spin briefly between jobs (a forward pass
// dispatches hundreds of jobs per token) and sleep when idle for longer.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace lmstream {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // n_threads <= 0: all cores
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_; }
  void run(const std::function<void(int)>& fn);

  // Calls fn(begin, end) over [0, n) in chunks of `chunk`, handed out dynamically to all threads.
  template <class F>
  void parallel_for(int64_t n, int64_t chunk, F&& fn) {
    if (n <= 0) return;
    if (n <= chunk || n_ == 1) {
      fn(int64_t(0), n);
      return;
    }
    std::atomic<int64_t> next{0};
    run([&](int) {
      for (;;) {
        int64_t b = next.fetch_add(chunk, std::memory_order_relaxed);
        if (b >= n) break;
        fn(b, b + chunk < n ? b + chunk : n);
      }
    });
  }

 private:
  void worker(int t);
  int n_;
  std::vector<std::thread> threads_;
  const std::function<void(int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> sleepers_{0};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace lmstream
