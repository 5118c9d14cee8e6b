// The sampler's row reductions (row_max, sum_exp) against scalar double references, on lengths
// that exercise the vector body, the tail and the 1024-value blocks, with NaN and -inf entries.
#include "kernels/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace lmstream {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(RowReductions, MaxIndexAndNanFlag) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 4.f);
  for (int n : {1, 3, 15, 16, 17, 33, 1000, 32000, 32003}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = nd(rng);
    const int64_t at = int64_t(rng() % uint32_t(n));
    x[size_t(at)] = 50.f;
    if (n > 2) x[size_t((at + 1) % n)] = 50.f;  // a tie: the lower index wins
    RowMax r = row_max(x.data(), n);
    EXPECT_EQ(r.value, 50.f) << n;
    EXPECT_EQ(r.index, n > 2 && (at + 1) % n < at ? (at + 1) % n : at) << n;
    EXPECT_FALSE(r.any_nan);
    x[size_t(n - 1)] = std::nanf("");
    r = row_max(x.data(), n);
    EXPECT_TRUE(r.any_nan) << n;
    if (n > 2) {
      EXPECT_EQ(r.value, 50.f);
    }
  }
  std::vector<float> all(40, -kInf);
  RowMax r = row_max(all.data(), 40);
  EXPECT_EQ(r.value, -kInf);
  EXPECT_FALSE(r.any_nan);
  all.assign(40, std::nanf(""));
  r = row_max(all.data(), 40);
  EXPECT_EQ(r.value, -kInf);
  EXPECT_TRUE(r.any_nan);
}

TEST(RowReductions, SumExpMatchesDoubleAndSkipsNegInf) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.f, 5.f);
  for (int n : {1, 7, 16, 31, 1024, 1025, 32000, 32011}) {
    std::vector<float> x(static_cast<size_t>(n)), out(static_cast<size_t>(n), -1.f);
    for (float& v : x) v = nd(rng);
    x[0] = -kInf;
    const RowMax m = row_max(x.data(), n);
    double ref = 0;
    for (float v : x)
      if (v != -kInf) ref += std::exp(double(v) - double(m.value));
    const double got = sum_exp(x.data(), n, m.value, out.data());
    EXPECT_NEAR(got, ref, 2e-6 * ref) << n;
    EXPECT_EQ(sum_exp(x.data(), n, m.value), got);
    EXPECT_EQ(out[0], 0.f);
    for (int i = 1; i < n; ++i)
      ASSERT_NEAR(out[size_t(i)], std::exp(double(x[size_t(i)]) - m.value), 1e-6) << i;
  }
}

}  // namespace
}  // namespace lmstream
