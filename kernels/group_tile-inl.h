// Per-target group kernels for the formats packed in group_layout.h (Q8_0, Q4_0): 16 output rows x
// up to 6 activation rows per tile. Included by each such format's file inside its own
// foreach_target pass and instantiated there for its layout F; VNNI intrinsics on AVX3_DL, portable
// code (which the compiler vectorizes) on every other target.
//
// Every target computes each output with the same integer sums and the same float operations in
// the same order, so results are bit-identical across targets (AllSimdTargetsAgreeBitForBit) and
// across batch sizes (see matmul.h). Must not: reorder the float arithmetic, split K, or know a
// format by name (everything format-specific comes from F's GroupLayout constants).

// Include guard that flips per target (Highway's convention for *-inl.h).
#if defined(LMSTREAM_KERNELS_GROUP_TILE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LMSTREAM_KERNELS_GROUP_TILE_INL_H_
#undef LMSTREAM_KERNELS_GROUP_TILE_INL_H_
#else
#define LMSTREAM_KERNELS_GROUP_TILE_INL_H_
#endif

#include <algorithm>
#include <cmath>
#include <cstring>

#include "hwy/highway.h"
#include "kernels/group_layout.h"
#include "kernels/matmul.h"

#undef LMS_VNNI_ATTR
#if HWY_TARGET == HWY_AVX3_DL
#include <immintrin.h>
#define LMS_VNNI_ATTR __attribute__((target("avx512vnni")))
#else
#define LMS_VNNI_ATTR
#endif

HWY_BEFORE_NAMESPACE();
namespace lmstream {
namespace HWY_NAMESPACE {

// Everything one group kernel call needs.
struct QArgs {
  const uint8_t* w;  // packed data of the matrix
  int64_t nb;        // blocks per row
  int64_t rows;
  const QuantActs* qx;
  float* y;
  int64_t ldy;
};

inline int32_t LoadI32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Each unroll pragma stays on its own line.
// clang-format off
#if HWY_TARGET == HWY_AVX3_DL
inline constexpr size_t kPrefetchBlocks = 6;
// 16 rows x RM activation rows, VNNI. Two integer sums per (row, activation row): hi and lo terms.
template <class F, int RM>
LMS_VNNI_ATTR HWY_INLINE void Tile(const QArgs& a, int64_t g, int m0) {
  const int64_t K = a.qx->cols;
  const int8_t* xh[RM];
  const int8_t* xl[RM];
  const float* xd[RM];
  const int32_t* xs[RM];
  _Pragma("GCC unroll 16")
  for (int m = 0; m < RM; ++m) {
    xh[m] = a.qx->hi.data() + (m0 + m) * K;
    xl[m] = a.qx->lo.data() + (m0 + m) * K;
    xd[m] = a.qx->d.data() + (m0 + m) * a.nb;
    xs[m] = a.qx->s.data() + (m0 + m) * a.nb;
  }
  __m512 acc[RM];
  _Pragma("GCC unroll 16")
  for (int m = 0; m < RM; ++m) acc[m] = _mm512_setzero_ps();
  constexpr size_t gbb = F::kGroupBlockBytes;
  const uint8_t* gp = a.w + size_t(g) * size_t(a.nb) * gbb;
  const __m512i nib = _mm512_set1_epi8(0x0F);
  for (int64_t b = 0; b < a.nb; ++b) {
    const uint8_t* blk = gp + size_t(b) * gbb;
    if (m0 == 0) {
      // The first tile of a group streams its weights from memory (later tiles find them in
      // cache): fetch a few blocks ahead.
      const char* pf = reinterpret_cast<const char*>(blk + kPrefetchBlocks * gbb);
      for (size_t o = 0; o < gbb; o += 64) _mm_prefetch(pf + o, _MM_HINT_T0);
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
    __m512i sh[RM], sl[RM];
    _Pragma("GCC unroll 16")
    for (int m = 0; m < RM; ++m) {
      sh[m] = _mm512_setzero_si512();
      sl[m] = _mm512_setzero_si512();
    }
    _Pragma("GCC unroll 16")
    for (int c = 0; c < F::kChunks; ++c) {
      const __m512i v = _mm512_loadu_si512(blk + F::chunk_offset(c));
      _Pragma("GCC unroll 16")
      for (int p = 0; p < F::kPlanes; ++p) {
        // The codes of plane p as bytes: 16 rows x 4 elements.
        __m512i u = v;
        if constexpr (F::kCodeBits == 4) {
          u = p == 0 ? _mm512_and_si512(v, nib) : _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
        }
        const int64_t o = b * F::kBlockCols + F::first_elem(c, p);
        _Pragma("GCC unroll 16")
        for (int m = 0; m < RM; ++m) {
          sh[m] = _mm512_dpbusd_epi32(sh[m], u, _mm512_set1_epi32(LoadI32(xh[m] + o)));
          sl[m] = _mm512_dpbusd_epi32(sl[m], u, _mm512_set1_epi32(LoadI32(xl[m] + o)));
        }
      }
    }
    _Pragma("GCC unroll 16")
    for (int m = 0; m < RM; ++m) {
      const __m512i t = _mm512_sub_epi32(_mm512_add_epi32(_mm512_slli_epi32(sh[m], 8), sl[m]),
                                         _mm512_set1_epi32(F::kBias * xs[m][b]));
      const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(t), _mm512_set1_ps(xd[m][b]));
      acc[m] = _mm512_fmadd_ps(f, dw, acc[m]);
    }
  }
  const int64_t n0 = g * kGroupRows;
  const int valid = int(std::min<int64_t>(kGroupRows, a.rows - n0));
  const __mmask16 mask = valid == 16 ? __mmask16(0xFFFF) : __mmask16((1u << valid) - 1);
  _Pragma("GCC unroll 16")
  for (int m = 0; m < RM; ++m) _mm512_mask_storeu_ps(a.y + (m0 + m) * a.ldy + n0, mask, acc[m]);
}
#else
// Portable version with exactly the same arithmetic per output element.
template <class F, int RM>
HWY_INLINE void Tile(const QArgs& a, int64_t g, int m0) {
  const int64_t K = a.qx->cols;
  float acc[RM][kGroupRows] = {};
  constexpr size_t gbb = F::kGroupBlockBytes;
  const uint8_t* gp = a.w + size_t(g) * size_t(a.nb) * gbb;
  for (int64_t b = 0; b < a.nb; ++b) {
    const uint8_t* blk = gp + size_t(b) * gbb;
    float dw[kGroupRows];
    for (int r = 0; r < kGroupRows; ++r) {
      uint16_t h;
      std::memcpy(&h, blk + 2 * r, 2);
      dw[r] = fp16_to_fp32(h);
    }
    int32_t sh[RM][kGroupRows] = {}, sl[RM][kGroupRows] = {};
    for (int m = 0; m < RM; ++m) {
      const int8_t* xh = a.qx->hi.data() + (m0 + m) * K + b * F::kBlockCols;
      const int8_t* xl = a.qx->lo.data() + (m0 + m) * K + b * F::kBlockCols;
      for (int c = 0; c < F::kChunks; ++c) {
        const uint8_t* wq = blk + F::chunk_offset(c);
        for (int r = 0; r < kGroupRows; ++r) {
          for (int j = 0; j < F::kLaneBytes; ++j) {
            const uint8_t v = wq[F::kLaneBytes * r + j];
            if constexpr (F::kPlanes == 1) {
              sh[m][r] += int32_t(v) * xh[F::first_elem(c, 0) + j];
              sl[m][r] += int32_t(v) * xl[F::first_elem(c, 0) + j];
            } else {
              const int32_t w1 = v & F::kCodeMask, w2 = v >> F::kCodeBits;
              sh[m][r] += w1 * xh[F::first_elem(c, 0) + j] + w2 * xh[F::first_elem(c, 1) + j];
              sl[m][r] += w1 * xl[F::first_elem(c, 0) + j] + w2 * xl[F::first_elem(c, 1) + j];
            }
          }
        }
      }
    }
    for (int m = 0; m < RM; ++m) {
      const float xd = a.qx->d[(m0 + m) * a.nb + b];
      const int32_t corr = F::kBias * a.qx->s[(m0 + m) * a.nb + b];
      for (int r = 0; r < kGroupRows; ++r) {
        const int32_t t = int32_t(uint32_t(sh[m][r]) << 8) + sl[m][r] - corr;
        const float f = float(t) * xd;
        acc[m][r] = std::fma(f, dw[r], acc[m][r]);
      }
    }
  }
  const int64_t n0 = g * kGroupRows;
  const int valid = int(std::min<int64_t>(kGroupRows, a.rows - n0));
  for (int m = 0; m < RM; ++m)
    for (int r = 0; r < valid; ++r) a.y[(m0 + m) * a.ldy + n0 + r] = acc[m][r];
}
#endif
// clang-format on

// Groups [g0, g1) of all M activation rows, in tiles of up to 6 rows.
template <class F>
LMS_VNNI_ATTR void GroupsImpl(const QArgs& a, int M, int64_t g0, int64_t g1) {
  for (int64_t g = g0; g < g1; ++g) {
    int m = 0;
    for (; m + 6 <= M; m += 6) Tile<F, 6>(a, g, m);
    switch (M - m) {
      case 5:
        Tile<F, 5>(a, g, m);
        break;
      case 4:
        Tile<F, 4>(a, g, m);
        break;
      case 3:
        Tile<F, 3>(a, g, m);
        break;
      case 2:
        Tile<F, 2>(a, g, m);
        break;
      case 1:
        Tile<F, 1>(a, g, m);
        break;
      default:
        break;
    }
  }
}

// The kernel of a matrix packed in F's layout (the body of a format's HWY_EXPORTed function).
template <class F>
LMS_VNNI_ATTR void GemmGroups(const Matrix* w, const QuantActs* qx, int M, float* y, int64_t ldy,
                              int64_t g0, int64_t g1) {
  const QArgs a{w->data, w->blocks(), w->rows, qx, y, ldy};
  GroupsImpl<F>(a, M, g0, g1);
}

}  // namespace HWY_NAMESPACE
}  // namespace lmstream
HWY_AFTER_NAMESPACE();

#endif  // include guard
