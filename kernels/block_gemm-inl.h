// Per-target group kernels for the formats multiplied in their file-block layout
// (block_formats.h: Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q5_K). Included by each such format's file inside
// its own foreach_target pass and instantiated there for its format F.
//
// Each weight block is decoded once per tile of up to kTileM activation rows into its integer
// view, then multiplied with the two-term int8 activations (QuantActs) per 32-column chunk:
//   T = sum_h sc_h * sum_{e in h} q_e * a_e   (a = hi * 256 + lo, computed as two int32 sums),
//   Mn = sum_h mn_h * sum_{e in h} a_e,
//   y += (d * T - dmin * Mn) * xd            (explicit fma: the same rounding on every target).
// Every output is accumulated over the blocks and chunks in file order whatever M, the tile or
// the thread, so results are batch invariant and identical across targets.
// Must not: reorder the float arithmetic, split K, or know a format by name.

#if defined(LMSTREAM_KERNELS_BLOCK_GEMM_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LMSTREAM_KERNELS_BLOCK_GEMM_INL_H_
#undef LMSTREAM_KERNELS_BLOCK_GEMM_INL_H_
#else
#define LMSTREAM_KERNELS_BLOCK_GEMM_INL_H_
#endif

#include <algorithm>
#include <cmath>
#include <cstring>

#include "hwy/highway.h"
#include "kernels/block_formats.h"
#include "kernels/matmul.h"

HWY_BEFORE_NAMESPACE();
namespace lmstream {
namespace HWY_NAMESPACE {

inline constexpr int kBlockTileM = 8;

// The contribution of 32 columns (chunk c of the block view v) of one weight row with one
// activation row (hi/lo point at the chunk's first column).
HWY_INLINE float BlockChunk(const BlockView& v, int c, const int8_t* HWY_RESTRICT xh,
                            const int8_t* HWY_RESTRICT xl, float xd, float acc) {
  int32_t thi = 0, tlo = 0, mm = 0;
  for (int h = 0; h < 2; ++h) {
    const int8_t* q = v.q + 32 * c + 16 * h;
    int32_t sh = 0, sl = 0, a = 0;
    for (int i = 0; i < 16; ++i) {
      const int32_t ah = xh[16 * h + i], al = xl[16 * h + i];
      sh += int32_t(q[i]) * ah;
      sl += int32_t(q[i]) * al;
      a += ah * 256 + al;
    }
    const int j = 2 * c + h;
    thi += int32_t(v.sc[j]) * sh;
    tlo += int32_t(v.sc[j]) * sl;
    mm += int32_t(v.mn[j]) * a;
  }
  const float t = float(thi) * 256.f + float(tlo);  // the product is exact
  const float mterm = v.dmin * float(mm);
  const float r = std::fma(v.d, t, -mterm);
  return std::fma(r, xd, acc);
}

template <class F>
void GemmBlockGroups(const Matrix* w, const QuantActs* qx, int M, float* y, int64_t ldy, int64_t g0,
                     int64_t g1) {
  using B = typename F::Block;
  const int64_t K = qx->cols, nb32 = K / 32, nbf = K / F::kCols;
  constexpr int kChunks = F::kCols / 32;
  for (int64_t g = g0; g < g1; ++g) {
    const uint8_t* gp = w->data + size_t(g) * size_t(nbf) * kGroupRows * sizeof(B);
    const int64_t n0 = g * kGroupRows;
    const int valid = int(std::min<int64_t>(kGroupRows, w->rows - n0));
    for (int m0 = 0; m0 < M; m0 += kBlockTileM) {
      const int mt = std::min(kBlockTileM, M - m0);
      float acc[kBlockTileM][kGroupRows] = {};
      for (int64_t b = 0; b < nbf; ++b) {
        const uint8_t* blk = gp + size_t(b) * kGroupRows * sizeof(B);
        for (int r = 0; r < valid; ++r) {
          BlockView v;
          B file;
          std::memcpy(&file, blk + size_t(r) * sizeof(B), sizeof(B));
          F::decode(file, v);
          for (int m = 0; m < mt; ++m) {
            const int64_t xo = int64_t(m0 + m) * K + b * F::kCols;
            const float* xd = qx->d.data() + int64_t(m0 + m) * nb32 + b * kChunks;
            float a = acc[m][r];
            for (int c = 0; c < kChunks; ++c)
              a = BlockChunk(v, c, qx->hi.data() + xo + 32 * c, qx->lo.data() + xo + 32 * c, xd[c],
                             a);
            acc[m][r] = a;
          }
        }
      }
      for (int m = 0; m < mt; ++m)
        for (int r = 0; r < valid; ++r) y[int64_t(m0 + m) * ldy + n0 + r] = acc[m][r];
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace lmstream
HWY_AFTER_NAMESPACE();

#endif  // include guard
