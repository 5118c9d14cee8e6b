// Tests for dtype.cc: fp16/bf16 conversions (exhaustive) and the Q8_0/Q4_0 reference quantizers.
#include "model/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace lmstream {
namespace {

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Straightforward definition of an IEEE half's value.
double half_value(uint16_t h) {
  int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0    ? std::ldexp(m, -24)
             : e == 31 ? (m ? NAN : INFINITY)
                       : std::ldexp(1024 + m, e - 25);
  return s ? -v : v;
}

TEST(Fp16, ToFp32Exhaustive) {
  for (uint32_t h = 0; h < 65536; ++h) {
    double ref = half_value(uint16_t(h));
    float got = fp16_to_fp32(uint16_t(h));
    if (std::isnan(ref)) {
      EXPECT_TRUE(std::isnan(got)) << h;
    } else {
      EXPECT_EQ(double(got), ref) << h;
      EXPECT_EQ(std::signbit(got), bool(h & 0x8000)) << h;
    }
  }
}

TEST(Fp16, RoundTripAndTiesToEvenExhaustive) {
  for (uint32_t h = 0; h < 65536; ++h) {
    if (((h >> 10) & 31) == 31 && (h & 1023)) {
      EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(fp16_to_fp32(uint16_t(h))))));
      continue;
    }
    EXPECT_EQ(fp32_to_fp16(fp16_to_fp32(uint16_t(h))), h);
    if ((h & 0x7fff) >= 0x7c00) continue;
    // Midpoint to the next half away from zero: ties go to the even mantissa.
    const uint16_t next = uint16_t(h + 1);
    const double a = half_value(uint16_t(h)),
                 b = (next & 0x7fff) == 0x7c00 ? std::copysign(65536.0, a) : half_value(next);
    const float mid = float((a + b) / 2);
    ASSERT_EQ(double(mid), (a + b) / 2);
    const uint16_t even = (h & 1) ? next : uint16_t(h);
    EXPECT_EQ(fp32_to_fp16(mid), even) << h;
    EXPECT_EQ(fp32_to_fp16(std::nextafter(mid, 0.f)), h) << h;
    EXPECT_EQ(fp32_to_fp16(
                  std::nextafter(mid, a > 0 || (a == 0 && !(h & 0x8000)) ? INFINITY : -INFINITY)),
              next)
        << h;
  }
  EXPECT_EQ(fp32_to_fp16(1e10f), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(-INFINITY), 0xfc00);
  EXPECT_EQ(fp32_to_fp16(1e-30f), 0);
}

#ifdef __FLT16_MAX__
TEST(Fp16, MatchesCompilerFloat16OnRandomFloats) {
  std::mt19937 rng(1);
  for (int i = 0; i < 2000000; ++i) {
    float f = from_bits(rng());
    if (std::isnan(f)) continue;
    _Float16 h = static_cast<_Float16>(f);
    uint16_t hb;
    std::memcpy(&hb, &h, 2);
    ASSERT_EQ(fp32_to_fp16(f), hb) << f;
  }
}
#endif

TEST(Bf16, Exhaustive) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = bf16_to_fp32(uint16_t(h));
    EXPECT_EQ(bits(f), h << 16);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(f))));
      continue;
    }
    EXPECT_EQ(fp32_to_bf16(f), h);
    if ((h & 0x7fff) >= 0x7f80) continue;
    uint16_t even = (h & 1) ? uint16_t(h + 1) : uint16_t(h);
    EXPECT_EQ(fp32_to_bf16(from_bits(h << 16 | 0x8000)), even) << h;
    EXPECT_EQ(fp32_to_bf16(from_bits(h << 16 | 0x7fff)), h) << h;
    EXPECT_EQ(fp32_to_bf16(from_bits(h << 16 | 0x8001)), uint16_t(h + 1)) << h;
  }
}

TEST(Q8_0, HandComputedBlock) {
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = float(j - 16);
  BlockQ8_0 b;
  quantize_row_q8_0(x, &b, 32);
  EXPECT_EQ(b.d, fp32_to_fp16(16.0f / 127.0f));
  EXPECT_EQ(b.qs[0], -127);  // -16 * 127/16
  EXPECT_EQ(b.qs[16], 0);
  EXPECT_EQ(b.qs[17], 8);    // 7.9375 rounds to 8
  EXPECT_EQ(b.qs[18], 16);   // 15.875
  EXPECT_EQ(b.qs[31], 119);  // 119.0625
  float y[32];
  dequantize_row(DType::Q8_0, &b, y, 32);
  for (int j = 0; j < 32; ++j) EXPECT_NEAR(y[j], x[j], 0.07f);
  float z[32] = {};
  quantize_row_q8_0(z, &b, 32);
  EXPECT_EQ(b.d, 0);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(b.qs[j], 0);
}

TEST(Q4_0, HandComputedBlock) {
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = float(j - 16);
  BlockQ4_0 b;
  quantize_row_q4_0(x, &b, 32);
  EXPECT_EQ(b.d, 0x4000);     // max = -16 -> d = -16 / -8 = 2
  EXPECT_EQ(b.qs[0], 0x80);   // x[0]: 0.5 -> 0; x[16]: 8.5 -> 8
  EXPECT_EQ(b.qs[15], 0xF8);  // x[15]: 8; x[31]: 16 clamped to 15
  for (int j = 0; j < 16; ++j) {
    int lo = int((j - 16) * 0.5f + 8.5f), hi = std::min(15, int((j)*0.5f + 8.5f));
    EXPECT_EQ(b.qs[j], lo | hi << 4) << j;
  }
  float y[32];
  dequantize_row(DType::Q4_0, &b, y, 32);
  EXPECT_EQ(y[0], -16.f);
  EXPECT_EQ(y[16], 0.f);
  EXPECT_EQ(y[31], 14.f);
}

TEST(Quantize, NonFiniteInputIsSafe) {
  std::vector<float> x(64, 1.f);
  x[3] = NAN;
  x[40] = INFINITY;
  BlockQ8_0 q8[2];
  BlockQ4_0 q4[2];
  quantize_row_q8_0(x.data(), q8, 64);
  quantize_row_q4_0(x.data(), q4, 64);
  EXPECT_EQ(q8[0].qs[0], 127);
}

TEST(DType, NamesAndSizes) {
  EXPECT_EQ(dtype_from_name("q4_0"), DType::Q4_0);
  EXPECT_FALSE(dtype_from_name("iq4_xs"));
  EXPECT_EQ(dtype_from_ggml(30), DType::BF16);
  EXPECT_FALSE(dtype_from_ggml(23));
  EXPECT_EQ(dtype_row_bytes(DType::Q8_0, 64), 68u);
  EXPECT_EQ(dtype_row_bytes(DType::Q4_0, 64), 36u);
  EXPECT_EQ(dtype_row_bytes(DType::BF16, 3), 6u);
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = std::sin(float(i));
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    std::vector<uint8_t> buf(dtype_row_bytes(t, 64));
    std::vector<float> y(64);
    quantize_row(t, x.data(), buf.data(), 64);
    dequantize_row(t, buf.data(), y.data(), 64);
    for (int i = 0; i < 64; ++i)
      EXPECT_NEAR(y[i], x[i], t == DType::Q4_0 ? 0.13f : 0.01f) << dtype_name(t);
  }
}

}  // namespace
}  // namespace lmstream
