// One anonymous memory region for one kind of large, long-lived data (the repacked weight
// matrices, the KV pool), 2 MiB-aligned and advised MADV_HUGEPAGE, so on hosts whose transparent
// huge pages are set to `madvise` (or `always`) it is backed by 2 MiB pages: fewer TLB misses on
// every pass over the weights. Many allocations share one arena, so rounding to 2 MiB costs at most
// one huge page per kind. Reports what it got (huge pages or not, and why) for the start-up log.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace lmstream {

class HugeArena {
 public:
  static constexpr size_t kHugePage = size_t(2) << 20;
  // Maps at least bytes (rounded up to 2 MiB) of zeroed, lazily committed memory. Throws
  // std::runtime_error when the mapping fails.
  // LMSTREAM_NO_HUGE_PAGES=1 in the environment skips MADV_HUGEPAGE (for A/B measurements).
  explicit HugeArena(size_t bytes);
  ~HugeArena();
  HugeArena(const HugeArena&) = delete;
  HugeArena& operator=(const HugeArena&) = delete;

  uint8_t* data() const { return base_; }
  size_t size() const { return size_; }
  // True when the kernel accepted MADV_HUGEPAGE for the region and THP is not `never`.
  bool advised() const { return advised_; }
  // Why huge pages are or are not used ("THP madvise: MADV_HUGEPAGE applied", "THP never ...").
  const std::string& reason() const { return reason_; }
  // Bytes of the region now backed by huge pages (AnonHugePages of its /proc/self/smaps entry).
  size_t huge_bytes() const { return huge_bytes_of(base_, size_); }
  // Bytes of [base, base + size) mapped by huge pages (anonymous, page-cache or shmem PMDs), from
  // /proc/self/smaps.
  static size_t huge_bytes_of(const uint8_t* base, size_t size);

  // The host's THP mode: "always", "madvise", "never", or "unavailable" (no THP in the kernel).
  static std::string thp_mode();

 private:
  uint8_t* base_ = nullptr;
  size_t size_ = 0;
  bool advised_ = false;
  std::string reason_;
};

}  // namespace lmstream
