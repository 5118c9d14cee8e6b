// ThreadPool: spin-then-sleep workers driven by a generation counter.
#include "kernels/threadpool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace lmstream {
namespace {
inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}
constexpr int kSpinIterations = 1 << 14;
}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  n_ = n_threads > 0 ? n_threads : int(std::thread::hardware_concurrency());
  if (n_ <= 0) n_ = 1;
  for (int t = 1; t < n_; ++t) threads_.emplace_back([this, t] { worker(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  cv_.notify_all();
  for (auto& th : threads_) th.join();
}

namespace {
constexpr uint64_t kClosed = uint64_t(1) << 31;
constexpr uint64_t kCountMask = kClosed - 1;
inline uint64_t gen_of(uint64_t c) { return c >> 32; }
}  // namespace

void ThreadPool::run(const std::function<void(int)>& fn) {
  if (n_ == 1) {
    fn(0);
    return;
  }
  job_ = &fn;
  uint64_t g;
  {
    // The lock orders the job publication with sleepers' wake-up check.
    std::lock_guard<std::mutex> lk(mu_);
    g = (generation_.load(std::memory_order_relaxed) + 1) & 0xFFFFFFFFu;
    ctl_.store(g << 32, std::memory_order_release);
    generation_.store(g, std::memory_order_release);
  }
  if (sleepers_.load(std::memory_order_acquire) > 0) cv_.notify_all();
  fn(0);
  // Close the job; wait for the workers that joined it.
  uint64_t c = ctl_.fetch_or(kClosed, std::memory_order_acq_rel) | kClosed;
  int spins = 0;
  while ((c & kCountMask) != 0) {
    if (++spins < 256)
      cpu_relax();
    else
      std::this_thread::yield();
    c = ctl_.load(std::memory_order_acquire);
  }
  job_ = nullptr;
}

void ThreadPool::worker(int t) {
  uint64_t seen = 0;
  for (;;) {
    int spins = 0;
    uint64_t g;
    while ((g = generation_.load(std::memory_order_acquire)) == seen) {
      ++spins;
      if (spins < kSpinIterations) {
        cpu_relax();
        continue;
      }
      if (spins < kSpinIterations + 2000) {
        std::this_thread::yield();
        continue;
      }
      std::unique_lock<std::mutex> lk(mu_);
      sleepers_.fetch_add(1);
      cv_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      sleepers_.fetch_sub(1);
      spins = 0;
    }
    seen = g;
    if (stop_.load()) return;
    // Join the job only while it is open and still this generation.
    uint64_t c = ctl_.load(std::memory_order_acquire);
    bool joined = false;
    while (gen_of(c) == g && !(c & kClosed)) {
      if (ctl_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel)) {
        joined = true;
        break;
      }
    }
    if (!joined) continue;
    (*job_)(t);
    ctl_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace lmstream
