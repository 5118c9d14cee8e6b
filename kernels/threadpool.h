// A fixed pool of threads for the forward pass. run(fn) calls fn(t) on the caller (t = 0) and on
// every worker that joins while the job is open; the caller closes the job when its own fn returns
// and waits only for workers that joined. So a worker that the OS has not scheduled (a busy,
// shared machine) never delays a job: fn must split its work dynamically (parallel_for does).
// Workers spin briefly between jobs (a forward pass dispatches hundreds per token), then yield,
// then sleep.
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
  // [generation: 32 bits][closed: 1 bit][workers inside the job: 31 bits]
  std::atomic<uint64_t> ctl_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> sleepers_{0};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace lmstream
