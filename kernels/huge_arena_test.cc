// Tests of HugeArena: 2 MiB alignment and rounding, zeroed memory, the reason it reports for the
// host's THP mode, and (where THP is madvise or always) that touched memory is backed by huge
// pages as /proc/self/smaps reports them.
#include "kernels/huge_arena.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

namespace lmstream {
namespace {

TEST(HugeArena, AlignedRoundedZeroedAndReportsWhy) {
  HugeArena a(3 * 1024 * 1024 + 5);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % HugeArena::kHugePage, 0u);
  EXPECT_EQ(a.size(), 2 * HugeArena::kHugePage);
  for (size_t i = 0; i < a.size(); i += 4096) ASSERT_EQ(a.data()[i], 0);
  const std::string mode = HugeArena::thp_mode();
  EXPECT_FALSE(a.reason().empty());
  if (mode == "madvise" || mode == "always") {
    EXPECT_TRUE(a.advised()) << a.reason();
    EXPECT_NE(a.reason().find("THP " + mode), std::string::npos) << a.reason();
    std::memset(a.data(), 1, a.size());  // fault the pages in
    // Both 2 MiB pages are huge pages (the kernel allocates them at fault time in an advised,
    // aligned region).
    EXPECT_GT(a.huge_bytes(), 0u) << a.reason();
    EXPECT_LE(a.huge_bytes(), a.size());
  } else {
    EXPECT_FALSE(a.advised());
    EXPECT_NE(a.reason().find("4 KiB pages"), std::string::npos) << a.reason();
  }
}

TEST(HugeArena, CanBeTurnedOffForComparisons) {
  setenv("LMSTREAM_NO_HUGE_PAGES", "1", 1);
  HugeArena a(100);
  unsetenv("LMSTREAM_NO_HUGE_PAGES");
  EXPECT_FALSE(a.advised());
  EXPECT_NE(a.reason().find("LMSTREAM_NO_HUGE_PAGES=1"), std::string::npos) << a.reason();
  std::memset(a.data(), 1, a.size());
  // Without the advice only THP `always` would still give huge pages.
  if (HugeArena::thp_mode() != "always") EXPECT_EQ(a.huge_bytes(), 0u);
}

TEST(HugeArena, ManyArenasAreIndependent) {
  HugeArena a(100), b(100);
  EXPECT_NE(a.data(), b.data());
  EXPECT_EQ(a.size(), HugeArena::kHugePage);
  a.data()[0] = 7;
  EXPECT_EQ(b.data()[0], 0);
}

}  // namespace
}  // namespace lmstream
