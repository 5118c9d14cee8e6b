// The Q6_K weight format (256-element super-blocks of 6-bit codes u, 16 sub-blocks of 16 with
// int8 scales, fp16 d: w = d * sc_k * (u - 32)): its packed group layout, descriptor and group
// kernels (VNNI on AVX3_DL, portable code on every other target; Highway dynamic dispatch).
//
// Packed layout, per (group of 16 rows, super-block), 3360 bytes = 16 x 210 (as many bytes per
// weight as the file):
//   [0, 32)        16 fp16 d, row r at 2r
//   [32, 288)      int8 scales: sub-block k of row r at 32 + 16k + r
//   [288, 2336)    low 4 bits: 32-block a at 288 + 256a, chunk c (0..3) at + 64c, row r at + 4r;
//                  byte i: element 32a + 4c + i (low nibble), 32a + 16 + 4c + i (high nibble)
//   [2336, 3360)   high 2 bits: 32-block a at 2336 + 128a, half h (0..1) at + 64h, row r at + 4r;
//                  byte i, bits 2p..2p+1: element 32a + 8p + 4h + i (p = 0..3)
// The -32 offset is applied with the activations' 16-element sums (of hi and lo; on AVX3_DL
// computed once per call with vpsadbw, Q6kOffsets).
//
// Arithmetic per (row, 32-block a, sub-blocks k0 = 2a, k1 = 2a + 1), the same on every target:
//   Shi_k = sum u * hi - 32 * sum hi, Slo_k likewise with lo (int32, sums over sub-block k),
//   t = float(sc_k0 Shi_k0 + sc_k1 Shi_k1) * 256 + float(sc_k0 Slo_k0 + sc_k1 Slo_k1),
//   y = fma(d * t, xd[a], y)
// (identical to block_gemm-inl.h's generic kernel with dmin = 0).
// Must not: be selected anywhere but format.cc's table.

#ifndef LMSTREAM_KERNELS_Q6_K_ONCE_
#define LMSTREAM_KERNELS_Q6_K_ONCE_
#include <cstring>

#include "kernels/matmul.h"
#include "model/kquants.h"

namespace lmstream {
namespace q6k {
inline constexpr size_t kGroupSuperBytes = size_t(kGroupRows) * sizeof(BlockQ6_K);  // 3360
inline constexpr size_t kScaleOff = 32, kLowOff = 288, kHighOff = 2336;
static_assert(kHighOff + 8 * 128 == kGroupSuperBytes);

inline size_t low_byte(int r, int e) {
  const int a = e / 32, w = e % 32;
  return kLowOff + 256 * size_t(a) + 64 * size_t(w % 16 / 4) + 4 * size_t(r) + size_t(w % 4);
}
inline int low_shift(int e) { return e % 32 >= 16 ? 4 : 0; }
inline size_t high_byte(int r, int e) {
  const int a = e / 32, w = e % 32;
  return kHighOff + 128 * size_t(a) + 64 * size_t(w % 8 / 4) + 4 * size_t(r) + size_t(w % 4);
}
inline int high_shift(int e) { return 2 * (e % 32 / 8); }

inline int file_code(const BlockQ6_K& f, int e) {
  const int h = e / 128, s = e % 128 / 32, l = e % 32;
  const uint8_t byte = f.ql[64 * h + 32 * (s & 1) + l];
  const int low = s < 2 ? (byte & 15) : (byte >> 4);
  return low | (((f.qh[32 * h + l] >> (2 * s)) & 3) << 4);
}

inline void pack(const Tensor& t, uint8_t* out) {
  const int64_t nb = t.cols / kQK_K, ng = (t.rows + kGroupRows - 1) / kGroupRows;
  for (int64_t g = 0; g < ng; ++g)
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* blk = out + (size_t(g) * size_t(nb) + size_t(b)) * kGroupSuperBytes;
      std::memset(blk, 0, kGroupSuperBytes);
      for (int r = 0; r < kGroupRows; ++r) {
        const int64_t n = g * kGroupRows + r;
        if (n >= t.rows) continue;  // padding rows: zero scales, weight 0
        BlockQ6_K f;
        std::memcpy(&f, t.row(n) + size_t(b) * sizeof f, sizeof f);
        std::memcpy(blk + 2 * r, &f.d, 2);
        for (int k = 0; k < 16; ++k) blk[kScaleOff + 16 * k + r] = uint8_t(f.scales[k]);
        for (int e = 0; e < kQK_K; ++e) {
          const int u = file_code(f, e);
          blk[low_byte(r, e)] |= uint8_t((u & 15) << low_shift(e));
          blk[high_byte(r, e)] |= uint8_t((u >> 4) << high_shift(e));
        }
      }
    }
}

inline int packed_code(const uint8_t* blk, int r, int e) {
  return ((blk[low_byte(r, e)] >> low_shift(e)) & 15) |
         (((blk[high_byte(r, e)] >> high_shift(e)) & 3) << 4);
}

inline void unpack_row(const Matrix& m, int64_t n, float* out) {
  const int64_t nb = m.cols / kQK_K, g = n / kGroupRows;
  const int r = int(n % kGroupRows);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = m.data + (size_t(g) * size_t(nb) + size_t(b)) * kGroupSuperBytes;
    uint16_t hd;
    std::memcpy(&hd, blk + 2 * r, 2);
    const float d = fp16_to_fp32(hd);
    for (int e = 0; e < kQK_K; ++e) {
      const int8_t sc = int8_t(blk[kScaleOff + 16 * (e / 16) + r]);
      out[b * kQK_K + e] = d * float(sc) * float(packed_code(blk, r, e) - 32);  // as the file's
    }
  }
}
}  // namespace q6k
}  // namespace lmstream
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/q6_k.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <algorithm>
#include <cmath>

#undef LMS_Q6K_ATTR
#if HWY_TARGET == HWY_AVX3_DL
#include <immintrin.h>
#define LMS_Q6K_ATTR __attribute__((target("avx512vnni")))
#else
#define LMS_Q6K_ATTR
#endif

HWY_BEFORE_NAMESPACE();
namespace lmstream {
namespace HWY_NAMESPACE {

// clang-format off
#if HWY_TARGET == HWY_AVX3_DL
inline int32_t Q6kLoadI32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The 6-bit codes of one byte plane: low nibbles (or high, kHigh) of v with 2 bits of hv at bit
// offset s moved to bits 4..5.
template <bool kHigh, int S>
LMS_Q6K_ATTR HWY_INLINE __m512i Q6kCodes(__m512i v, __m512i hv) {
  const __m512i nib = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
  const __m512i low = kHigh ? _mm512_and_si512(_mm512_srli_epi16(v, 4), nib) : _mm512_and_si512(v, nib);
  __m512i h;
  if constexpr (S <= 4) h = _mm512_slli_epi16(hv, 4 - S);
  else h = _mm512_srli_epi16(hv, S - 4);
  return _mm512_or_si512(low, _mm512_and_si512(h, m30));
}

// The -32 offsets of one call's activation rows: for (row m, 32-block ab), 32 times the sums of hi
// over its two sub-blocks of 16, then of lo (vpsadbw of x ^ 0x80 adds x + 128 per 8 bytes). They
// depend on the activations only, so a call computes them once for all its groups.
LMS_Q6K_ATTR HWY_INLINE void Q6kOffsets(const QuantActs* qx, int M, int32_t* corr) {
  const int64_t K = qx->cols, nb32 = K / 32;
  for (int m = 0; m < M; ++m)
    for (int64_t ab = 0; ab < nb32; ++ab) {
      const int8_t* h = qx->hi.data() + m * K + 32 * ab;
      const int8_t* l = qx->lo.data() + m * K + 32 * ab;
      const __m512i x2 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h))),
                                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(l)), 1);
      const __m512i sad = _mm512_sad_epu8(_mm512_xor_si512(x2, _mm512_set1_epi8(-128)), _mm512_setzero_si512());
      alignas(32) int32_t p[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi64_epi32(sad));
      int32_t* c = corr + 4 * (m * nb32 + ab);
      c[0] = 32 * (p[0] + p[1] - 2048);
      c[1] = 32 * (p[2] + p[3] - 2048);
      c[2] = 32 * (p[4] + p[5] - 2048);
      c[3] = 32 * (p[6] + p[7] - 2048);
    }
}

// The scale products are done in float: |sc_k| <= 128 and |Shi_k| <= 16 * 32 * 128, so each
// product is an integer of at most 2^23 and their sum at most 2^24, all exact in float: the
// results are bit-identical to the portable kernel's integer arithmetic, without vpmulld.
template <int RM>
LMS_Q6K_ATTR HWY_INLINE void Q6kTile(const Matrix* w, const QuantActs* qx, const int32_t* corr,
                                     float* y, int64_t ldy, int64_t g, int m0) {
  const int64_t K = qx->cols, nb = K / kQK_K, nb32 = K / 32;
  const int8_t* xh[RM];
  const int8_t* xl[RM];
  const float* xd[RM];
  const int32_t* xc[RM];
  _Pragma("GCC unroll 8")
  for (int m = 0; m < RM; ++m) {
    xh[m] = qx->hi.data() + (m0 + m) * K;
    xl[m] = qx->lo.data() + (m0 + m) * K;
    xd[m] = qx->d.data() + (m0 + m) * nb32;
    xc[m] = corr + 4 * (m0 + m) * nb32;
  }
  __m512 acc[RM];
  _Pragma("GCC unroll 8")
  for (int m = 0; m < RM; ++m) acc[m] = _mm512_setzero_ps();
  const uint8_t* gp = w->data + size_t(g) * size_t(nb) * q6k::kGroupSuperBytes;
  const __m512 k256 = _mm512_set1_ps(256.f);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = gp + size_t(b) * q6k::kGroupSuperBytes;
    if (m0 == 0) {
      const char* pf = reinterpret_cast<const char*>(blk + 2 * q6k::kGroupSuperBytes);
      for (size_t o = 0; o < q6k::kGroupSuperBytes; o += 64) _mm_prefetch(pf + o, _MM_HINT_T0);
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
    _Pragma("GCC unroll 8")
    for (int a = 0; a < 8; ++a) {
      const __m512 sc0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + q6k::kScaleOff + 16 * (2 * a)))));
      const __m512 sc1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + q6k::kScaleOff + 16 * (2 * a + 1)))));
      const __m512i hv0 = _mm512_loadu_si512(blk + q6k::kHighOff + 128 * a);
      const __m512i hv1 = _mm512_loadu_si512(blk + q6k::kHighOff + 128 * a + 64);
      __m512i h0[RM], h1[RM], l0[RM], l1[RM];
      _Pragma("GCC unroll 8")
      for (int m = 0; m < RM; ++m) h0[m] = h1[m] = l0[m] = l1[m] = _mm512_setzero_si512();
      _Pragma("GCC unroll 4")
      for (int c = 0; c < 4; ++c) {
        const __m512i v = _mm512_loadu_si512(blk + q6k::kLowOff + 256 * a + 64 * c);
        const __m512i hv = (c % 2) ? hv1 : hv0;
        __m512i u0, u1;  // elements 4c.. (sub-block 2a) and 16 + 4c.. (sub-block 2a + 1)
        if (c / 2 == 0) {
          u0 = Q6kCodes<false, 0>(v, hv);
          u1 = Q6kCodes<true, 4>(v, hv);
        } else {
          u0 = Q6kCodes<false, 2>(v, hv);
          u1 = Q6kCodes<true, 6>(v, hv);
        }
        const int64_t o = b * kQK_K + 32 * a + 4 * c;
        _Pragma("GCC unroll 8")
        for (int m = 0; m < RM; ++m) {
          h0[m] = _mm512_dpbusd_epi32(h0[m], u0, _mm512_set1_epi32(Q6kLoadI32(xh[m] + o)));
          h1[m] = _mm512_dpbusd_epi32(h1[m], u1, _mm512_set1_epi32(Q6kLoadI32(xh[m] + o + 16)));
          l0[m] = _mm512_dpbusd_epi32(l0[m], u0, _mm512_set1_epi32(Q6kLoadI32(xl[m] + o)));
          l1[m] = _mm512_dpbusd_epi32(l1[m], u1, _mm512_set1_epi32(Q6kLoadI32(xl[m] + o + 16)));
        }
      }
      const int64_t ab = b * 8 + a;
      _Pragma("GCC unroll 8")
      for (int m = 0; m < RM; ++m) {
        const int32_t* c = xc[m] + 4 * ab;
        const __m512 sh0 = _mm512_cvtepi32_ps(_mm512_sub_epi32(h0[m], _mm512_set1_epi32(c[0])));
        const __m512 sh1 = _mm512_cvtepi32_ps(_mm512_sub_epi32(h1[m], _mm512_set1_epi32(c[1])));
        const __m512 sl0 = _mm512_cvtepi32_ps(_mm512_sub_epi32(l0[m], _mm512_set1_epi32(c[2])));
        const __m512 sl1 = _mm512_cvtepi32_ps(_mm512_sub_epi32(l1[m], _mm512_set1_epi32(c[3])));
        const __m512 thi = _mm512_fmadd_ps(sc0, sh0, _mm512_mul_ps(sc1, sh1));
        const __m512 tlo = _mm512_fmadd_ps(sc0, sl0, _mm512_mul_ps(sc1, sl1));
        const __m512 t = _mm512_fmadd_ps(thi, k256, tlo);
        acc[m] = _mm512_fmadd_ps(_mm512_mul_ps(dw, t), _mm512_set1_ps(xd[m][ab]), acc[m]);
      }
    }
  }
  const int64_t n0 = g * kGroupRows;
  const int valid = int(std::min<int64_t>(kGroupRows, w->rows - n0));
  const __mmask16 mask = valid == 16 ? __mmask16(0xFFFF) : __mmask16((1u << valid) - 1);
  _Pragma("GCC unroll 8")
  for (int m = 0; m < RM; ++m) _mm512_mask_storeu_ps(y + (m0 + m) * ldy + n0, mask, acc[m]);
}
#else
template <int RM>
HWY_INLINE void Q6kTile(const Matrix* w, const QuantActs* qx, float* y, int64_t ldy, int64_t g,
                        int m0) {
  const int64_t K = qx->cols, nb = K / kQK_K, nb32 = K / 32;
  float acc[RM][kGroupRows] = {};
  const uint8_t* gp = w->data + size_t(g) * size_t(nb) * q6k::kGroupSuperBytes;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = gp + size_t(b) * q6k::kGroupSuperBytes;
    float dw[kGroupRows];
    for (int r = 0; r < kGroupRows; ++r) {
      uint16_t h;
      std::memcpy(&h, blk + 2 * r, 2);
      dw[r] = fp16_to_fp32(h);
    }
    for (int a = 0; a < 8; ++a) {
      int32_t h0[RM][kGroupRows] = {}, h1[RM][kGroupRows] = {}, l0[RM][kGroupRows] = {},
              l1[RM][kGroupRows] = {};
      for (int c = 0; c < 4; ++c) {
        const uint8_t* v = blk + q6k::kLowOff + 256 * a + 64 * c;
        const uint8_t* hv = blk + q6k::kHighOff + 128 * a + 64 * (c % 2);
        const int s0 = 2 * (c / 2), s1 = 2 * (2 + c / 2);
        const int64_t o = b * kQK_K + 32 * a + 4 * c;
        for (int m = 0; m < RM; ++m) {
          const int8_t* xh = qx->hi.data() + (m0 + m) * K + o;
          const int8_t* xl = qx->lo.data() + (m0 + m) * K + o;
          for (int r = 0; r < kGroupRows; ++r)
            for (int i = 0; i < 4; ++i) {
              const int32_t u0 = (v[4 * r + i] & 15) | (((hv[4 * r + i] >> s0) & 3) << 4);
              const int32_t u1 = (v[4 * r + i] >> 4) | (((hv[4 * r + i] >> s1) & 3) << 4);
              h0[m][r] += u0 * xh[i];
              h1[m][r] += u1 * xh[16 + i];
              l0[m][r] += u0 * xl[i];
              l1[m][r] += u1 * xl[16 + i];
            }
        }
      }
      const int64_t ab = b * 8 + a;
      for (int m = 0; m < RM; ++m) {
        const int8_t* xh = qx->hi.data() + (m0 + m) * K + b * kQK_K + 32 * a;
        const int8_t* xl = qx->lo.data() + (m0 + m) * K + b * kQK_K + 32 * a;
        int32_t hs[2] = {}, ls[2] = {};
        for (int i = 0; i < 32; ++i) {
          hs[i / 16] += xh[i];
          ls[i / 16] += xl[i];
        }
        const float xd = qx->d[(m0 + m) * nb32 + ab];
        for (int r = 0; r < kGroupRows; ++r) {
          const int32_t sc0 = int8_t(blk[q6k::kScaleOff + 16 * (2 * a) + r]);
          const int32_t sc1 = int8_t(blk[q6k::kScaleOff + 16 * (2 * a + 1) + r]);
          const int32_t thi = sc0 * (h0[m][r] - 32 * hs[0]) + sc1 * (h1[m][r] - 32 * hs[1]);
          const int32_t tlo = sc0 * (l0[m][r] - 32 * ls[0]) + sc1 * (l1[m][r] - 32 * ls[1]);
          const float t = float(thi) * 256.f + float(tlo);
          acc[m][r] = std::fma(dw[r] * t, xd, acc[m][r]);
        }
      }
    }
  }
  const int64_t n0 = g * kGroupRows;
  const int valid = int(std::min<int64_t>(kGroupRows, w->rows - n0));
  for (int m = 0; m < RM; ++m)
    for (int r = 0; r < valid; ++r) y[(m0 + m) * ldy + n0 + r] = acc[m][r];
}
#endif
// clang-format on

LMS_Q6K_ATTR void GemmQ6_K(const Matrix* w, const QuantActs* qx, int M, float* y, int64_t ldy,
                           int64_t g0, int64_t g1) {
#if HWY_TARGET == HWY_AVX3_DL
  thread_local std::vector<int32_t> corr;  // grows to the largest call once, then reused
  corr.resize(std::max(corr.size(), size_t(4) * size_t(M) * size_t(qx->cols / 32)));
  Q6kOffsets(qx, M, corr.data());
  const int32_t* c = corr.data();
#define LMS_Q6K_TILE(R) Q6kTile<R>(w, qx, c, y, ldy, g, m)
#else
#define LMS_Q6K_TILE(R) Q6kTile<R>(w, qx, y, ldy, g, m)
#endif
  for (int64_t g = g0; g < g1; ++g) {
    int m = 0;
    for (; m + 4 <= M; m += 4) LMS_Q6K_TILE(4);
    switch (M - m) {
      case 3:
        LMS_Q6K_TILE(3);
        break;
      case 2:
        LMS_Q6K_TILE(2);
        break;
      case 1:
        LMS_Q6K_TILE(1);
        break;
      default:
        break;
    }
  }
#undef LMS_Q6K_TILE
}

}  // namespace HWY_NAMESPACE
}  // namespace lmstream
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lmstream {

HWY_EXPORT(GemmQ6_K);

namespace {
void gemm(const Matrix& w, const float*, const QuantActs& qx, int M, float* y, int64_t ldy,
          int64_t g0, int64_t g1) {
  HWY_DYNAMIC_DISPATCH(GemmQ6_K)(&w, &qx, M, y, ldy, g0, g1);
}
}  // namespace

extern constinit const WeightFormat kQ6_KFormat = {
    .type = DType::Q6_K,
    .packed = true,
    .block_cols = kQK_K,
    .group_block_bytes = q6k::kGroupSuperBytes / 8,  // per 32 columns
    .pack = &q6k::pack,
    .unpack_row = &q6k::unpack_row,
    .gemm = &gemm,
};

}  // namespace lmstream
#endif  // HWY_ONCE
