// The sampler's row reductions (row_max, sum_exp) against scalar double references, on lengths
// that exercise the vector body, the tail and the 1024-value blocks, with NaN and -inf entries;
// and paged attention (attention_group) against a double reference over every tiling path.
#include "kernels/ops.h"

#include "hwy/targets.h"
#include "model/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
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

// Paged causal attention of one KV head's query group, in float64 from the same (rounded) K/V.
TEST(Attention, GroupMatchesDoubleReferenceOnEveryTilingPath) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.f, 1.f);
  struct Shape {
    int heads, head_dim, block_size, n_pos;
  };
  // Head counts around the 8- and 4-head tiles, head_dims with and without whole 4-vector tiles,
  // block sizes of 1, 2 and 4 vectors and of none (the scalar path), positions around blocks.
  const Shape shapes[] = {{8, 64, 16, 1},  {8, 64, 16, 17},  {8, 64, 16, 300},  {1, 128, 16, 33},
                          {3, 64, 32, 70}, {9, 64, 16, 50},  {4, 128, 64, 130}, {5, 48, 16, 40},
                          {2, 20, 8, 19},  {16, 64, 16, 64}, {7, 80, 32, 5},    {1, 64, 16, 512}};
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {  // AVX-512 (16 lanes), AVX2 (8)...
    hwy::SetSupportedTargetsForTest(target);
    for (bool f16 : {true, false}) {
      for (const Shape& sh : shapes) {
        const int H = sh.heads, hd = sh.head_dim, bs = sh.block_size, n = sh.n_pos;
        const int nb = (n + bs - 1) / bs, pool_blocks = nb + 3;
        const size_t elt = f16 ? 2 : 4, stride = size_t(bs) * hd * elt;
        std::vector<uint8_t> kpool(stride * pool_blocks), vpool(stride * pool_blocks);
        std::vector<int32_t> table(static_cast<size_t>(nb));
        std::iota(table.begin(), table.end(), 0);
        std::shuffle(table.begin(), table.end(), rng);
        for (int32_t& b : table) b += 2;  // blocks 0 and 1 of the pool are never read
        // kd/vd: the values as stored, for the reference.
        std::vector<double> kd(size_t(n) * hd), vd(size_t(n) * hd);
        auto put = [&](uint8_t* at, double* ref, float v) {
          if (f16) {
            const uint16_t h = fp32_to_fp16(v);
            std::memcpy(at, &h, 2);
            *ref = fp16_to_fp32(h);
          } else {
            std::memcpy(at, &v, 4);
            *ref = v;
          }
        };
        for (int p = 0; p < n; ++p) {
          const size_t blk = size_t(table[size_t(p / bs)]), slot = size_t(p % bs);
          for (int e = 0; e < hd; ++e) {
            // K transposed within the block ([head_dim][block_size]), V row-major.
            put(kpool.data() + blk * stride + (size_t(e) * bs + slot) * elt,
                &kd[size_t(p) * hd + e], 2.f * nd(rng));
            put(vpool.data() + blk * stride + (slot * hd + size_t(e)) * elt,
                &vd[size_t(p) * hd + e], nd(rng));
          }
        }
        std::vector<float> q(size_t(H) * hd), scores(size_t(H) * n, 0.f), out(size_t(H) * hd, -7.f);
        for (float& v : q) v = nd(rng);
        const AttnGroup ag{q.data(),     H,  hd,     n,   kpool.data(),  vpool.data(),
                           table.data(), bs, stride, f16, scores.data(), out.data()};
        attention_group(ag);
        for (int h = 0; h < H; ++h) {
          std::vector<double> s(static_cast<size_t>(n));
          double mx = -1e300;
          for (int p = 0; p < n; ++p) {
            double t = 0;
            for (int e = 0; e < hd; ++e)
              t += double(q[size_t(h) * hd + e]) * kd[size_t(p) * hd + e];
            s[size_t(p)] = t / std::sqrt(double(hd));
            mx = std::max(mx, s[size_t(p)]);
          }
          double sum = 0;
          for (double& t : s) sum += (t = std::exp(t - mx));
          for (int e = 0; e < hd; ++e) {
            double o = 0;
            for (int p = 0; p < n; ++p) o += s[size_t(p)] / sum * vd[size_t(p) * hd + e];
            ASSERT_NEAR(out[size_t(h) * hd + e], o, 2e-5 + 2e-5 * std::fabs(o))
                << "f16=" << f16 << " H=" << H << " hd=" << hd << " bs=" << bs << " n=" << n
                << " h=" << h << " e=" << e << " target=" << hwy::TargetName(target);
          }
        }
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace
}  // namespace lmstream
