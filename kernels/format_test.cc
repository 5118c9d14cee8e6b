// Weight format descriptors: each one is found for its type, is the one Matrix::prepare selects,
// and packs then unpacks a tensor of random blocks (any code, any finite scale) exactly.
#include "kernels/format.h"

#include <gtest/gtest.h>

#include <algorithm>
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
      case DType::Q5_0:
        finite16(&bytes[o], false);
        break;
      case DType::Q4_1:
      case DType::Q5_1:
      case DType::Q4_K:
      case DType::Q5_K:
        finite16(&bytes[o], false);
        finite16(&bytes[o + 2], false);
        break;
      case DType::Q2_K:
        finite16(&bytes[o + 80], false);
        finite16(&bytes[o + 82], false);
        break;
      case DType::Q3_K:
        finite16(&bytes[o + 108], false);
        break;
      case DType::Q6_K:
        finite16(&bytes[o + 208], false);
        break;
    }
  }
  return bytes;
}

TEST(WeightFormat, LookupAndPrepareSelectTheDescriptor) {
  ASSERT_EQ(weight_formats().size(), 13u);
  for (const WeightFormat* f : weight_formats()) {
    EXPECT_EQ(&weight_format(f->type), f);
    EXPECT_EQ(f->packed, dtype_is_quantized(f->type)) << dtype_name(f->type);
    EXPECT_EQ(f->pack != nullptr, f->packed) << dtype_name(f->type);
    EXPECT_EQ(f->block_cols, dtype_block_elems(f->type)) << dtype_name(f->type);
    const int64_t cols = 2 * std::max<int64_t>(32, dtype_block_elems(f->type));
    std::vector<uint8_t> bytes(dtype_row_bytes(f->type, cols) * 3);
    Tensor t{"w", f->type, 3, cols, bytes.data()};
    const Matrix m = Matrix::prepare(t);
    EXPECT_EQ(m.format, f);
    EXPECT_EQ(m.packed, f->packed);
  }
  EXPECT_EQ(weight_format(DType::Q8_0).group_block_bytes, 544u);
  EXPECT_EQ(weight_format(DType::Q4_0).group_block_bytes, 288u);
  // Block-layout formats: 16 rows of file blocks, counted per 32 columns (as many bytes per
  // weight as the file).
  for (DType t : {DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q4_K,
                  DType::Q5_K, DType::Q6_K})
    EXPECT_EQ(weight_format(t).group_block_bytes,
              16 * dtype_block_bytes(t) * 32 / size_t(dtype_block_elems(t)))
        << dtype_name(t);
}

TEST(WeightFormat, PackUnpackRoundTripsRandomTensorsExactly) {
  std::mt19937 rng(11);
  for (const WeightFormat* f : weight_formats()) {
    // Partial and whole last groups, one and several blocks per row.
    const int64_t s = dtype_block_elems(f->type) > 32 ? 8 : 1;  // 256-element super-blocks
    for (auto [rows, cols32] :
         {std::pair<int64_t, int64_t>{1, 32}, {16, 64}, {45, 160}, {33, 256}}) {
      const int64_t cols = cols32 * s;
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
