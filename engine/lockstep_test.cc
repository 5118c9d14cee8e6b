// Step-plan encoding (engine/lockstep.h): round trips, and every truncation or corruption is a
// clean std::invalid_argument (a worker then aborts the job rather than computing garbage).
#include "engine/lockstep.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

namespace lmstream {
namespace {

TEST(Lockstep, RoundTrip) {
  const std::vector<int32_t> t1 = {5, 6, 7}, b1 = {0, 3}, t2 = {9}, b2 = {1, 2, 4};
  std::vector<SeqStep> batch = {{t1, 0, b1, true, false}, {t2, 17, b2, false, true}};
  const std::vector<uint8_t> bytes = encode_plan(PlanKind::kRun, 42, batch);
  const DecodedPlan p = decode_plan(bytes);
  EXPECT_EQ(p.kind, PlanKind::kRun);
  EXPECT_EQ(p.step, 42u);
  ASSERT_EQ(p.batch.size(), 2u);
  EXPECT_EQ(std::vector<int32_t>(p.batch[0].tokens.begin(), p.batch[0].tokens.end()), t1);
  EXPECT_EQ(std::vector<int32_t>(p.batch[1].block_table.begin(), p.batch[1].block_table.end()), b2);
  EXPECT_EQ(p.batch[1].pos, 17);
  EXPECT_TRUE(p.batch[0].want_logits);
  EXPECT_FALSE(p.batch[0].all_logits);
  EXPECT_FALSE(p.batch[1].want_logits);
  EXPECT_TRUE(p.batch[1].all_logits);
  const DecodedPlan idle = decode_plan(encode_plan(PlanKind::kShutdown, 7, {}));
  EXPECT_EQ(idle.kind, PlanKind::kShutdown);
  EXPECT_TRUE(idle.batch.empty());
}

TEST(Lockstep, EveryTruncationAndCorruptionIsRefused) {
  const std::vector<int32_t> t = {1, 2, 3, 4}, b = {0};
  std::vector<SeqStep> batch = {{t, 0, b, true, false}};
  const std::vector<uint8_t> bytes = encode_plan(PlanKind::kRun, 1, batch);
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
    EXPECT_THROW(decode_plan(cut), std::invalid_argument) << n;
  }
  std::vector<uint8_t> longer = bytes;
  longer.push_back(0);
  EXPECT_THROW(decode_plan(longer), std::invalid_argument);
  std::vector<uint8_t> magic = bytes;
  magic[0] ^= 1;
  EXPECT_THROW(decode_plan(magic), std::invalid_argument);
  std::vector<uint8_t> kind = bytes;
  kind[4] = 9;
  EXPECT_THROW(decode_plan(kind), std::invalid_argument);
  std::vector<uint8_t> count = bytes;
  count[16] = 0xff;  // n_seqs far beyond the payload
  EXPECT_THROW(decode_plan(count), std::invalid_argument);
}

}  // namespace
}  // namespace lmstream
