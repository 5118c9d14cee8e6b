// The file-block formats that are multiplied in their own block layout (Q2_K, Q3_K, Q5_K and the
// legacy Q4_1/Q5_0/Q5_1; Q4_K and Q6_K have their own VNNI layouts in q4_k.cc / q6_k.cc): each
// one's decoder into a common integer view of a block, which the group kernels of block_gemm-inl.h
// multiply with the quantized activations.
//
// Packed layout (pack_block_groups): per group of kGroupRows rows and file block b, the 16 rows'
// file blocks back to back (row r's block at r * sizeof(Block)): the same bytes per weight as the
// file, and one group's blocks are contiguous so a kernel task streams them.
//
// Integer view of a block of kCols elements: w_e = d * sc[e / 16] * q[e] - dmin * mn[e / 16] with
// int8 q (the code minus the format's offset) and small integer sc, mn. unpack_row is the file's
// own dequantization (dequantize_row).
// Must not: depend on a SIMD target.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/matmul.h"
#include "model/dtype.h"
#include "model/kquants.h"

namespace lmstream {

struct BlockView {
  int8_t q[kQK_K];
  int16_t sc[kQK_K / 16];
  int16_t mn[kQK_K / 16];
  float d, dmin;
};

namespace block_detail {
inline int legacy4(const uint8_t* qs, int e) { return e < 16 ? (qs[e] & 15) : (qs[e - 16] >> 4); }
inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
}  // namespace block_detail

struct FmtQ4_1 {
  using Block = BlockQ4_1;
  static constexpr int kCols = 32;
  static void decode(const Block& b, BlockView& v) {
    for (int e = 0; e < 32; ++e) v.q[e] = int8_t(block_detail::legacy4(b.qs, e));
    v.sc[0] = v.sc[1] = 1;
    v.mn[0] = v.mn[1] = 1;
    v.d = fp16_to_fp32(b.d);
    v.dmin = -fp16_to_fp32(b.m);
  }
};

struct FmtQ5_0 {
  using Block = BlockQ5_0;
  static constexpr int kCols = 32;
  static void decode(const Block& b, BlockView& v) {
    const uint32_t h = block_detail::load_u32(b.qh);
    for (int e = 0; e < 32; ++e)
      v.q[e] = int8_t((block_detail::legacy4(b.qs, e) | int((h >> e) & 1) << 4) - 16);
    v.sc[0] = v.sc[1] = 1;
    v.mn[0] = v.mn[1] = 0;
    v.d = fp16_to_fp32(b.d);
    v.dmin = 0.f;
  }
};

struct FmtQ5_1 {
  using Block = BlockQ5_1;
  static constexpr int kCols = 32;
  static void decode(const Block& b, BlockView& v) {
    const uint32_t h = block_detail::load_u32(b.qh);
    for (int e = 0; e < 32; ++e)
      v.q[e] = int8_t(block_detail::legacy4(b.qs, e) | int((h >> e) & 1) << 4);
    v.sc[0] = v.sc[1] = 1;
    v.mn[0] = v.mn[1] = 1;
    v.d = fp16_to_fp32(b.d);
    v.dmin = -fp16_to_fp32(b.m);
  }
};

struct FmtQ2_K {
  using Block = BlockQ2_K;
  static constexpr int kCols = kQK_K;
  static void decode(const Block& b, BlockView& v) {
    for (int e = 0; e < kQK_K; ++e)
      v.q[e] = int8_t((b.qs[32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32))) & 3);
    for (int j = 0; j < 16; ++j) {
      v.sc[j] = int16_t(b.scales[j] & 15);
      v.mn[j] = int16_t(b.scales[j] >> 4);
    }
    v.d = fp16_to_fp32(b.d);
    v.dmin = fp16_to_fp32(b.dmin);
  }
};

struct FmtQ3_K {
  using Block = BlockQ3_K;
  static constexpr int kCols = kQK_K;
  static void decode(const Block& b, BlockView& v) {
    for (int e = 0; e < kQK_K; ++e) {
      const int low = (b.qs[32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32))) & 3;
      const int hi = (b.hmask[e % 32] >> (e / 32)) & 1;
      v.q[e] = int8_t(low + 4 * hi - 4);
    }
    int8_t s[16];
    unpack_q3_k_scales(b.scales, s);
    for (int j = 0; j < 16; ++j) {
      v.sc[j] = s[j];
      v.mn[j] = 0;
    }
    v.d = fp16_to_fp32(b.d);
    v.dmin = 0.f;
  }
};

template <bool kFive>
struct FmtQ45_K {
  using Block = std::conditional_t<kFive, BlockQ5_K, BlockQ4_K>;
  static constexpr int kCols = kQK_K;
  static void decode(const Block& b, BlockView& v) {
    for (int e = 0; e < kQK_K; ++e) {
      const int c = e / 64, r = e % 64;
      const uint8_t byte = b.qs[32 * c + r % 32];
      int q = r < 32 ? (byte & 15) : (byte >> 4);
      if constexpr (kFive) q += 16 * ((b.qh[e % 32] >> (e / 32)) & 1);
      v.q[e] = int8_t(q);
    }
    for (int j = 0; j < 8; ++j) {
      uint8_t s, m;
      q4_k_scale_min(j, b.scales, s, m);
      v.sc[2 * j] = v.sc[2 * j + 1] = s;
      v.mn[2 * j] = v.mn[2 * j + 1] = m;
    }
    v.d = fp16_to_fp32(b.d);
    v.dmin = fp16_to_fp32(b.dmin);
  }
};
using FmtQ5_K = FmtQ45_K<true>;

// Bytes of the packed layout per (group, 32 columns), as WeightFormat::group_block_bytes counts.
template <class F>
constexpr size_t block_group_bytes() {
  return size_t(kGroupRows) * sizeof(typename F::Block) * 32 / F::kCols;
}

// Packs t into groups of kGroupRows rows, each group's file blocks row-interleaved (see above).
// Padding rows past the end of the matrix are zero blocks (fp16 zero scales: weight 0).
template <class F>
void pack_block_groups(const Tensor& t, uint8_t* out) {
  using B = typename F::Block;
  const int64_t nb = t.cols / F::kCols, ng = (t.rows + kGroupRows - 1) / kGroupRows;
  for (int64_t g = 0; g < ng; ++g)
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* dst = out + (size_t(g) * size_t(nb) + size_t(b)) * kGroupRows * sizeof(B);
      for (int r = 0; r < kGroupRows; ++r) {
        const int64_t n = g * kGroupRows + r;
        if (n < t.rows)
          std::memcpy(dst + r * sizeof(B), t.row(n) + size_t(b) * sizeof(B), sizeof(B));
        else
          std::memset(dst + r * sizeof(B), 0, sizeof(B));
      }
    }
}

// Row n of a matrix packed by pack_block_groups, dequantized exactly as the file's blocks are.
template <class F>
void unpack_block_row(const Matrix& m, int64_t n, float* out) {
  using B = typename F::Block;
  const int64_t nb = m.cols / F::kCols, g = n / kGroupRows;
  const int r = int(n % kGroupRows);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* src =
        m.data + ((size_t(g) * size_t(nb) + size_t(b)) * kGroupRows + size_t(r)) * sizeof(B);
    dequantize_row(m.type, src, out + b * F::kCols, F::kCols);
  }
}

template <class F>
constexpr WeightFormat block_format(DType type, GemmGroupsFn gemm) {
  return {
      .type = type,
      .packed = true,
      .block_cols = F::kCols,
      .group_block_bytes = block_group_bytes<F>(),
      .pack = &pack_block_groups<F>,
      .unpack_row = &unpack_block_row<F>,
      .gemm = gemm,
  };
}

}  // namespace lmstream
