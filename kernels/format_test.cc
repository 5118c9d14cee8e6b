// Weight format descriptors: each one is found for its type, is the one Matrix::prepare selects,
// and packs then unpacks a tensor of random blocks (any code, any finite scale) exactly.
#include "kernels/format.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/matmul.h"

namespace lmstream {
namespace {

// A random tensor of `type`: random bytes, with every fp16/bf16/f32 value made finite. Covers codes
// the reference quantizers never produce (e.g. Q8_0's -128).
std::vector<uint8_t> random_rows(DType type, int64_t rows, int64_t cols, std::mt19937& rng) {
  std::vector<uint8_t> bytes(dtype_row_bytes(type, cols) * size_t(rows));
  for (auto& b : bytes) b = uint8_t(rng());
  auto finite16 = [&](uint8_t* p, bool bf16) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    const float f = bf16 ? bf16_to_fp32(h) : fp16_to_fp32(h);
    if (!std::isfinite(f)) h &= bf16 ? 0xBFFF : 0xBBFF;  // clear an exponent bit
    std::memcpy(p, &h, 2);
  };
  const size_t bb = dtype_block_bytes(type);
  for (size_t o = 0; o < bytes.size(); o += bb) {
    switch (type) {
      case DType::F32: {
        float f;
        std::memcpy(&f, &bytes[o], 4);
        if (!std::isfinite(f)) bytes[o + 3] &= 0xBF;
        break;
      }
      case DType::F16:
      case DType::Q8_0:
      case DType::Q4_0:
        finite16(&bytes[o], false);
        break;
      case DType::BF16:
        finite16(&bytes[o], true);
        break;
    }
  }
  return bytes;
}

TEST(WeightFormat, LookupAndPrepareSelectTheDescriptor) {
  ASSERT_EQ(weight_formats().size(), 5u);
  for (const WeightFormat* f : weight_formats()) {
    EXPECT_EQ(&weight_format(f->type), f);
    EXPECT_EQ(f->packed, dtype_is_quantized(f->type)) << dtype_name(f->type);
    EXPECT_EQ(f->pack != nullptr, f->packed) << dtype_name(f->type);
    EXPECT_EQ(f->block_cols, dtype_block_elems(f->type)) << dtype_name(f->type);
    std::vector<uint8_t> bytes(dtype_row_bytes(f->type, 64) * 3);
    Tensor t{"w", f->type, 3, 64, bytes.data()};
    const Matrix m = Matrix::prepare(t);
    EXPECT_EQ(m.format, f);
    EXPECT_EQ(m.packed, f->packed);
  }
  EXPECT_EQ(weight_format(DType::Q8_0).group_block_bytes, 544u);
  EXPECT_EQ(weight_format(DType::Q4_0).group_block_bytes, 288u);
}

TEST(WeightFormat, PackUnpackRoundTripsRandomTensorsExactly) {
  std::mt19937 rng(11);
  for (const WeightFormat* f : weight_formats()) {
    // Partial and whole last groups, one and several blocks per row.
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 32}, {16, 64}, {45, 160}, {33, 256}}) {
      auto bytes = random_rows(f->type, rows, cols, rng);
      Tensor t{"w", f->type, rows, cols, bytes.data()};
      const Matrix m = Matrix::prepare(t);
      if (f->packed) {
        ASSERT_EQ(m.bytes, size_t(m.groups() * m.blocks()) * f->group_block_bytes);
        ASSERT_NE(m.data, t.data);
      }
      std::vector<float> want(static_cast<size_t>(cols)), got(static_cast<size_t>(cols));
      for (int64_t n = 0; n < rows; ++n) {
        dequantize_row(f->type, t.row(n), want.data(), cols);
        f->unpack_row(m, n, got.data());
        ASSERT_EQ(std::memcmp(want.data(), got.data(), want.size() * 4), 0)
            << dtype_name(f->type) << " rows " << rows << " cols " << cols << " row " << n;
      }
    }
  }
}

}  // namespace
}  // namespace lmstream
