// dist::Comm under mpirun (ctest runs this binary with 1, 2 and 4 ranks): every collective's
// result checked on every rank, and a timed wait that runs out ends the job.
#include "dist/comm.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <string>
#include <vector>

namespace lmstream::dist {
namespace {

class Finalize : public ::testing::Environment {
 public:
  void TearDown() override { Comm::world().finalize(); }
};
const auto* env = ::testing::AddGlobalTestEnvironment(new Finalize);

TEST(Comm, WorldMatchesLauncher) {
  Comm& c = Comm::world();
  if (const char* n = std::getenv("OMPI_COMM_WORLD_SIZE")) {
    EXPECT_TRUE(c.mpi());
    EXPECT_EQ(c.size(), std::atoi(n));
    EXPECT_EQ(c.rank(), std::atoi(std::getenv("OMPI_COMM_WORLD_RANK")));
  } else {
    EXPECT_EQ(c.size(), 1);
    EXPECT_EQ(c.rank(), 0);
  }
  EXPECT_GE(c.local_rank(), 0);
  EXPECT_LT(c.local_rank(), c.local_size());
}

TEST(Comm, AllreduceSumsInPlace) {
  Comm& c = Comm::world();
  for (size_t n : {size_t(1), size_t(4096), size_t(300000)}) {
    std::vector<float> x(n);
    for (size_t i = 0; i < n; ++i) x[i] = float(c.rank() + 1) * float(i % 97) + 0.25f;
    c.allreduce_sum(x.data(), n);
    const float ranks = float(c.size() * (c.size() + 1) / 2);
    for (size_t i = 0; i < n; i += 37)
      ASSERT_FLOAT_EQ(x[i], ranks * float(i % 97) + 0.25f * c.size()) << "n=" << n << " i=" << i;
  }
  EXPECT_EQ(c.allreduce_min(100 + c.rank()), 100);
  EXPECT_EQ(c.allreduce_max(100 + c.rank()), 100 + c.size() - 1);
}

TEST(Comm, BroadcastFromRankZero) {
  Comm& c = Comm::world();
  for (size_t n : {size_t(0), size_t(5), size_t(1 << 20)}) {
    std::vector<uint8_t> buf;
    if (c.rank() == 0) {
      buf.resize(n);
      for (size_t i = 0; i < n; ++i) buf[i] = uint8_t(i * 7 + 3);
    } else {
      buf.assign(17, 0xEE);  // other ranks' contents and sizes do not matter
    }
    c.bcast(buf, 10.0);
    ASSERT_EQ(buf.size(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(buf[i], uint8_t(i * 7 + 3));
  }
}

TEST(Comm, GatherInRankOrder) {
  Comm& c = Comm::world();
  std::vector<int> counts;
  int total = 0;
  for (int r = 0; r < c.size(); ++r) {
    counts.push_back(r + 2);  // uneven on purpose
    total += r + 2;
  }
  std::vector<float> mine(size_t(c.rank() + 2));
  for (size_t i = 0; i < mine.size(); ++i) mine[i] = float(c.rank() * 100 + int(i));
  std::vector<float> all(size_t(total), -1.f);
  c.gatherv(mine.data(), int(mine.size()), all.data(), counts);
  if (c.rank() == 0) {
    size_t k = 0;
    for (int r = 0; r < c.size(); ++r)
      for (int i = 0; i < r + 2; ++i) EXPECT_EQ(all[k++], float(r * 100 + i));
  }
  const auto names = c.gather_strings("rank" + std::to_string(c.rank()));
  if (c.rank() == 0) {
    ASSERT_EQ(int(names.size()), c.size());
    for (int r = 0; r < c.size(); ++r) EXPECT_EQ(names[r], "rank" + std::to_string(r));
  } else {
    EXPECT_TRUE(names.empty());
  }
}

TEST(Comm, BarrierMeetsInTime) {
  Comm& c = Comm::world();
  const auto t0 = std::chrono::steady_clock::now();
  c.barrier(10.0);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
}

// A wait whose peer never comes: rank 0 skips a broadcast the others wait for. They must abort
// the job within the timeout rather than hang. Run in a child job so this job survives: the
// child is this binary under a fresh mpirun, selected by the environment.
TEST(Comm, MissingPeerAbortsWithinTimeout) {
  Comm& c = Comm::world();
  if (std::getenv("LMS_DIST_CHILD")) GTEST_SKIP() << "inside the child job";
  if (c.rank() != 0) GTEST_SKIP() << "rank 0 runs the child job";
  char self[4096] = {0};
  ASSERT_GT(readlink("/proc/self/exe", self, sizeof self - 1), 0);
  const std::string cmd =
      "env -i PATH=/usr/bin:/bin LMS_DIST_CHILD=1 timeout 60 mpirun --allow-run-as-root "
      "--oversubscribe --bind-to none "
      "--mca btl self,vader --mca pml ob1 --mca btl_vader_single_copy_mechanism none -np 2 " +
      std::string(self) + " --gtest_filter=Comm.ChildLostBroadcast >/dev/null 2>&1";
  const auto t0 = std::chrono::steady_clock::now();
  const int st = std::system(cmd.c_str());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_NE(WEXITSTATUS(st), 0) << "the job should have been aborted";
  EXPECT_NE(WEXITSTATUS(st), 124) << "the job hung until timeout(1) killed it";
  EXPECT_LT(secs, 30.0);
}

TEST(Comm, ChildLostBroadcast) {
  if (!std::getenv("LMS_DIST_CHILD")) GTEST_SKIP() << "only inside the child job";
  Comm& c = Comm::world();
  if (c.rank() == 0) {
    sleep(20);  // never broadcasts; rank 1 gives up after 2 s and aborts the whole job
    return;
  }
  std::vector<uint8_t> buf;
  c.bcast(buf, 2.0);
  FAIL() << "the broadcast should not have completed";
}

}  // namespace
}  // namespace lmstream::dist
