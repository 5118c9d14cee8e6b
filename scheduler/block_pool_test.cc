// Tests of BlockPool: allocation, release, all-or-nothing failure, and that check() catches every
// kind of broken accounting (double ownership, leaks, foreign release).
#include "scheduler/block_pool.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace lmstream {
namespace {

using Live = std::unordered_map<uint64_t, const std::vector<int32_t>*>;

TEST(BlockPool, AllocateAndReleaseKeepInvariant) {
  BlockPool pool(8);
  EXPECT_EQ(pool.n_blocks(), 8);
  EXPECT_EQ(pool.n_free(), 8);
  std::vector<int32_t> a, b;
  ASSERT_TRUE(pool.allocate(1, 3, a));
  ASSERT_TRUE(pool.allocate(2, 5, b));
  EXPECT_EQ(pool.n_free(), 0);
  EXPECT_EQ(pool.n_used(), 8);
  EXPECT_EQ(pool.check({{1, &a}, {2, &b}}), "");
  std::set<int32_t> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  EXPECT_EQ(all.size(), 8u);
  pool.release(1, a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(pool.n_free(), 3);
  EXPECT_EQ(pool.check({{2, &b}}), "");
  pool.release(2, b);
  EXPECT_EQ(pool.check({}), "");
  EXPECT_EQ(pool.n_free(), 8);
}

TEST(BlockPool, AllocationFailureChangesNothing) {
  BlockPool pool(4);
  std::vector<int32_t> a{}, b{};
  ASSERT_TRUE(pool.allocate(1, 3, a));
  std::vector<int32_t> before = b;
  EXPECT_FALSE(pool.allocate(2, 2, b));
  EXPECT_EQ(b, before);
  EXPECT_EQ(pool.n_free(), 1);
  EXPECT_EQ(pool.check({{1, &a}}), "");
  ASSERT_TRUE(pool.allocate(1, 1, a));  // grows the same table
  EXPECT_EQ(a.size(), 4u);
  EXPECT_EQ(pool.check({{1, &a}}), "");
  EXPECT_TRUE(pool.allocate(3, 0, b));
  EXPECT_THROW(pool.allocate(3, -1, b), std::invalid_argument);
}

TEST(BlockPool, CheckDetectsLeak) {
  BlockPool pool(4);
  std::vector<int32_t> a;
  ASSERT_TRUE(pool.allocate(1, 2, a));
  std::string err = pool.check({});  // sequence 1 forgotten
  EXPECT_NE(err.find("neither free nor"), std::string::npos) << err;
}

TEST(BlockPool, CheckDetectsSharedBlock) {
  BlockPool pool(4);
  std::vector<int32_t> a;
  ASSERT_TRUE(pool.allocate(1, 2, a));
  std::vector<int32_t> forged = {a[0]};
  std::string err = pool.check({{1, &a}, {2, &forged}});
  EXPECT_NE(err, "");
}

TEST(BlockPool, CheckDetectsFreeBlockInTable) {
  BlockPool pool(4);
  std::vector<int32_t> a;
  ASSERT_TRUE(pool.allocate(1, 1, a));
  std::vector<int32_t> forged = a;
  forged.push_back(a[0] == 0 ? 1 : 0);  // a block that is still free
  EXPECT_NE(pool.check({{1, &forged}}), "");
  std::vector<int32_t> bad = {99};
  EXPECT_NE(pool.check({{1, &bad}}), "");
}

TEST(BlockPool, ReleaseOfForeignBlocksThrowsAndChangesNothing) {
  BlockPool pool(4);
  std::vector<int32_t> a, b;
  ASSERT_TRUE(pool.allocate(1, 2, a));
  ASSERT_TRUE(pool.allocate(2, 1, b));
  std::vector<int32_t> mixed = {a[0], b[0]};
  EXPECT_THROW(pool.release(1, mixed), std::logic_error);
  EXPECT_EQ(mixed.size(), 2u);
  EXPECT_EQ(pool.check({{1, &a}, {2, &b}}), "");
  std::vector<int32_t> out = {7};
  EXPECT_THROW(pool.release(1, out), std::logic_error);
}

TEST(BlockPool, RandomChurnNeverBreaksInvariant) {
  BlockPool pool(64);
  std::mt19937 rng(7);
  std::unordered_map<uint64_t, std::vector<int32_t>> tables;
  for (int it = 0; it < 2000; ++it) {
    uint64_t id = rng() % 10;
    auto& t = tables[id];
    if (rng() % 3 == 0) {
      pool.release(id, t);
    } else {
      int n = int(rng() % 6);
      int free_before = pool.n_free();
      bool ok = pool.allocate(id, n, t);
      EXPECT_EQ(ok, n <= free_before);
    }
    Live live;
    for (auto& [k, v] : tables) live[k] = &v;
    ASSERT_EQ(pool.check(live), "") << "iteration " << it;
  }
  for (auto& [k, v] : tables) pool.release(k, v);
  EXPECT_EQ(pool.n_free(), 64);
  EXPECT_EQ(pool.check({}), "");
}

TEST(BlockPool, EmptyPool) {
  BlockPool pool(0);
  std::vector<int32_t> t;
  EXPECT_FALSE(pool.allocate(1, 1, t));
  EXPECT_EQ(pool.check({}), "");
  EXPECT_THROW(BlockPool(-1), std::invalid_argument);
}

}  // namespace
}  // namespace lmstream
