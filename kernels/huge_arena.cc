// HugeArena: a 2 MiB-aligned anonymous mapping with MADV_HUGEPAGE (see huge_arena.h).
#include "kernels/huge_arena.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace lmstream {

std::string HugeArena::thp_mode() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  if (!f || !std::getline(f, line)) return "unavailable";
  const size_t a = line.find('['), b = line.find(']');
  if (a == std::string::npos || b == std::string::npos || b <= a) return "unavailable";
  return line.substr(a + 1, b - a - 1);
}

HugeArena::HugeArena(size_t bytes) {
  if (bytes == 0) bytes = 1;
  size_ = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  // Over-map by one huge page and trim, so the region starts on a 2 MiB boundary.
  const size_t span = size_ + kHugePage;
  void* p = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED)
    throw std::runtime_error("cannot map " + std::to_string(size_) +
                             " bytes: " + std::strerror(errno));
  const uintptr_t raw = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = (raw + kHugePage - 1) & ~uintptr_t(kHugePage - 1);
  if (aligned > raw) munmap(p, aligned - raw);
  const uintptr_t end = raw + span, used_end = aligned + size_;
  if (end > used_end) munmap(reinterpret_cast<void*>(used_end), end - used_end);
  base_ = reinterpret_cast<uint8_t*>(aligned);

  const std::string mode = thp_mode();
  const char* off = std::getenv("LMSTREAM_NO_HUGE_PAGES");
  if (off && std::string(off) == "1") {
    reason_ = "huge pages turned off by LMSTREAM_NO_HUGE_PAGES=1 (THP " + mode + "): 4 KiB pages";
  } else if (mode == "never") {
    reason_ = "transparent huge pages are off on this host (THP never): 4 KiB pages";
  } else if (mode == "unavailable") {
    reason_ = "this kernel has no transparent huge pages: 4 KiB pages";
  } else if (madvise(base_, size_, MADV_HUGEPAGE) != 0) {
    reason_ =
        std::string("madvise(MADV_HUGEPAGE) failed (") + std::strerror(errno) + "): 4 KiB pages";
  } else {
    advised_ = true;
    reason_ = "THP " + mode + ", MADV_HUGEPAGE on a 2 MiB-aligned arena";
  }
}

HugeArena::~HugeArena() {
  if (base_) munmap(base_, size_);
}

size_t HugeArena::huge_bytes_of(const uint8_t* base, size_t size) {
  std::ifstream f("/proc/self/smaps");
  if (!f) return 0;
  std::string line;
  bool in = false;
  size_t total = 0;
  const uintptr_t lo = reinterpret_cast<uintptr_t>(base), hi = lo + size;
  while (std::getline(f, line)) {
    unsigned long a = 0, b = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &a, &b) == 2) {
      // A mapping header ("start-end perms ..."): inside the arena when it overlaps it (the kernel
      // may merge it with a neighbouring anonymous mapping).
      in = uintptr_t(a) < hi && uintptr_t(b) > lo;
      continue;
    }
    const size_t colon = line.find(':');
    if (!in || colon == std::string::npos) continue;
    const std::string field = line.substr(0, colon);
    if (field == "AnonHugePages" || field == "FilePmdMapped" || field == "ShmemPmdMapped") {
      std::istringstream s(line.substr(colon + 1));
      size_t kb = 0;
      s >> kb;
      total += kb * 1024;
    }
  }
  return std::min(total, size);
}

}  // namespace lmstream
