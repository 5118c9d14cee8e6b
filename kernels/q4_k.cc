// The Q4_K weight format (256-element super-blocks of 4-bit codes, 8 sub-blocks of 32 with 6-bit
// scale and min codes, fp16 d and dmin: w = d * s_j * q - dmin * m_j): its packed group layout,
// descriptor and group kernels (VNNI on AVX3_DL, portable code on every other target; Highway
// dynamic dispatch).
//
// Packed layout, per (group of 16 rows, super-block), 2304 bytes = 16 x 144 (as many bytes per
// weight as the file):
//   [0, 32)      16 fp16 d, row r at 2r        [32, 64)  16 fp16 dmin
//   [64, 256)    the file's 12 scale bytes as 3 little-endian words: word k of row r at 64 + 64k +
//   4r [256, 2304)  codes: sub-block j at 256 + 256j, chunk c (0..3) at + 64c, row r at + 4r; byte
//   i
//                holds element 32j + 4c + i (low nibble) and 32j + 16 + 4c + i (high nibble).
// One 512-bit vpdpbusd multiplies 4 codes of each of the 16 rows with 4 activations; each lane is
// one output row, so the per-row scales and mins are lane-wise multiplies.
//
// Arithmetic per (row, sub-block j = activation block b), the same on every target:
//   Shi = sum q * hi, Slo = sum q * lo (int32), T = 256 * Shi + Slo (int32, |T| < 2^24 so
//   float(T) is exact), A = QuantActs::s[b] (|A| < 2^24), ds = d * float(s_j),
//   dm = dmin * float(m_j), y = fma(fma(ds, float(T), -(dm * float(A))), xd[b], y)
// (the AVX3_DL and portable kernels below do exactly this, so they agree bit for bit). ds and dm
// depend on the weights only, so a tile computes them once per sub-block for all its rows.
// Must not: be selected anywhere but format.cc's table.

#ifndef LMSTREAM_KERNELS_Q4_K_ONCE_
#define LMSTREAM_KERNELS_Q4_K_ONCE_
#include <cstring>

#include "kernels/matmul.h"
#include "model/kquants.h"

namespace lmstream {
namespace q4k {
inline constexpr size_t kGroupSuperBytes = size_t(kGroupRows) * sizeof(BlockQ4_K);  // 2304
inline constexpr size_t kScaleOff = 64, kCodeOff = 256;
static_assert(kCodeOff + 8 * 4 * 64 == kGroupSuperBytes);

inline size_t code_byte(int r, int e) {  // element e (0..255) of row r
  const int j = e / 32, w = e % 32;
  return kCodeOff + 256 * size_t(j) + 64 * size_t(w % 16 / 4) + 4 * size_t(r) + size_t(w % 4);
}
inline int code_shift(int e) { return (e % 32) >= 16 ? 4 : 0; }

inline void pack(const Tensor& t, uint8_t* out) {
  const int64_t nb = t.cols / kQK_K, ng = (t.rows + kGroupRows - 1) / kGroupRows;
  for (int64_t g = 0; g < ng; ++g)
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* blk = out + (size_t(g) * size_t(nb) + size_t(b)) * kGroupSuperBytes;
      std::memset(blk, 0, kGroupSuperBytes);
      for (int r = 0; r < kGroupRows; ++r) {
        const int64_t n = g * kGroupRows + r;
        if (n >= t.rows) continue;  // padding rows: zero scales, weight 0
        BlockQ4_K f;
        std::memcpy(&f, t.row(n) + size_t(b) * sizeof f, sizeof f);
        std::memcpy(blk + 2 * r, &f.d, 2);
        std::memcpy(blk + 32 + 2 * r, &f.dmin, 2);
        for (int k = 0; k < 3; ++k)
          std::memcpy(blk + kScaleOff + 64 * k + 4 * r, f.scales + 4 * k, 4);
        for (int e = 0; e < kQK_K; ++e) {
          const int c = e / 64, rr = e % 64;
          const uint8_t byte = f.qs[32 * c + rr % 32];
          const int q = rr < 32 ? (byte & 15) : (byte >> 4);
          blk[code_byte(r, e)] |= uint8_t(q << code_shift(e));
        }
      }
    }
}

// The 12 scale bytes of row r.
inline void row_scales(const uint8_t* blk, int r, uint8_t s12[12]) {
  for (int k = 0; k < 3; ++k) std::memcpy(s12 + 4 * k, blk + kScaleOff + 64 * k + 4 * r, 4);
}

inline void unpack_row(const Matrix& m, int64_t n, float* out) {
  const int64_t nb = m.cols / kQK_K, g = n / kGroupRows;
  const int r = int(n % kGroupRows);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = m.data + (size_t(g) * size_t(nb) + size_t(b)) * kGroupSuperBytes;
    uint16_t hd, hm;
    std::memcpy(&hd, blk + 2 * r, 2);
    std::memcpy(&hm, blk + 32 + 2 * r, 2);
    const float d = fp16_to_fp32(hd), dmin = fp16_to_fp32(hm);
    uint8_t s12[12];
    row_scales(blk, r, s12);
    for (int j = 0; j < 8; ++j) {
      uint8_t s, mn;
      q4_k_scale_min(j, s12, s, mn);
      const float d1 = d * s, m1 = dmin * mn;  // as dequantize_row_q4_k
      for (int l = 0; l < 32; ++l) {
        const int e = 32 * j + l;
        const int q = (blk[code_byte(r, e)] >> code_shift(e)) & 15;
        out[b * kQK_K + e] = d1 * float(q) - m1;
      }
    }
  }
}
}  // namespace q4k
}  // namespace lmstream
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/q4_k.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <algorithm>
#include <cmath>
#include <vector>

#undef LMS_Q4K_ATTR
#if HWY_TARGET == HWY_AVX3_DL
#include <immintrin.h>
#define LMS_Q4K_ATTR __attribute__((target("avx512vnni")))
#else
#define LMS_Q4K_ATTR
#endif

HWY_BEFORE_NAMESPACE();
namespace lmstream {
namespace HWY_NAMESPACE {

// clang-format off
#if HWY_TARGET == HWY_AVX3_DL

// One call's activation rows, interleaved for the tiles (Q4kInterleave): rows in blocks of 6 (a
// tile's rows), and per block, for each 4-element step o4 of K, the 4 bytes of hi of rows 0..5
// then of lo (12 dwords), and per 32-block the block sum A (as float: |A| < 2^24, exact) and the
// scale d of rows 0..5 (12 floats). A tile then reaches all its rows through one pointer and
// constant offsets instead of 24 (which spilled and cost an add each per step).
inline constexpr int kQ4kRows = 6;
struct Q4kActs {
  const int32_t* x;  // [block][K/4][2][6]
  const float* sd;   // [block][K/32][2][6]
  int64_t x_block, sd_block;  // elements per block
};

LMS_Q4K_ATTR HWY_INLINE Q4kActs Q4kInterleave(const QuantActs* qx, int M) {
  thread_local std::vector<int32_t> xbuf;  // grow to the largest call once, then reused
  thread_local std::vector<float> sdbuf;
  const int64_t K = qx->cols, k4 = K / 4, nb32 = K / 32;
  const int64_t blocks = (M + kQ4kRows - 1) / kQ4kRows;
  Q4kActs a{nullptr, nullptr, k4 * 2 * kQ4kRows, nb32 * 2 * kQ4kRows};
  xbuf.resize(std::max(xbuf.size(), size_t(blocks * a.x_block)));
  sdbuf.resize(std::max(sdbuf.size(), size_t(blocks * a.sd_block)));
  for (int m = 0; m < M; ++m) {
    const int64_t mb = m / kQ4kRows, r = m % kQ4kRows;
    int32_t* xo = xbuf.data() + mb * a.x_block + r;
    const int8_t* h = qx->hi.data() + m * K;
    const int8_t* l = qx->lo.data() + m * K;
    for (int64_t o = 0; o < k4; ++o) {
      std::memcpy(xo + o * 2 * kQ4kRows, h + 4 * o, 4);
      std::memcpy(xo + o * 2 * kQ4kRows + kQ4kRows, l + 4 * o, 4);
    }
    float* so = sdbuf.data() + mb * a.sd_block + r;
    for (int64_t ab = 0; ab < nb32; ++ab) {
      so[ab * 2 * kQ4kRows] = float(qx->s[m * nb32 + ab]);
      so[ab * 2 * kQ4kRows + kQ4kRows] = qx->d[m * nb32 + ab];
    }
  }
  a.x = xbuf.data();
  a.sd = sdbuf.data();
  return a;
}

// The scales of a super-block are decoded once into sjf/mjf (shared by every activation row of the
// tile), which also frees the registers for 6 rows per tile.
template <int RM>
LMS_Q4K_ATTR HWY_INLINE void Q4kTile(const Matrix* w, const QuantActs* qx, const Q4kActs& ia,
                                     float* y, int64_t ldy, int64_t g, int m0) {
  static_assert(RM <= kQ4kRows);
  const int64_t K = qx->cols, nb = K / kQK_K;
  const int32_t* xp = ia.x + (m0 / kQ4kRows) * ia.x_block;  // + o4 * 12 + m (hi), + 6 (lo)
  const float* sp = ia.sd + (m0 / kQ4kRows) * ia.sd_block;  // + ab * 12 + m (A), + 6 (d)
  __m512 acc[RM];
  _Pragma("GCC unroll 8")
  for (int m = 0; m < RM; ++m) acc[m] = _mm512_setzero_ps();
  const uint8_t* gp = w->data + size_t(g) * size_t(nb) * q4k::kGroupSuperBytes;
  const __m512i nib = _mm512_set1_epi8(0x0F);
  alignas(64) float sjf[8][16], mjf[8][16];
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = gp + size_t(b) * q4k::kGroupSuperBytes;
    if (m0 == 0) {
      const char* pf = reinterpret_cast<const char*>(blk + 2 * q4k::kGroupSuperBytes);
      for (size_t o = 0; o < q4k::kGroupSuperBytes; o += 64) _mm_prefetch(pf + o, _MM_HINT_T0);
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
    const __m512 dm = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32)));
    {
      const __m512i W0 = _mm512_loadu_si512(blk + q4k::kScaleOff);
      const __m512i W1 = _mm512_loadu_si512(blk + q4k::kScaleOff + 64);
      const __m512i W2 = _mm512_loadu_si512(blk + q4k::kScaleOff + 128);
      const __m512i m63 = _mm512_set1_epi32(63), m15 = _mm512_set1_epi32(15), m3 = _mm512_set1_epi32(3);
      _Pragma("GCC unroll 8")
      for (int j = 0; j < 8; ++j) {
        __m512i sj, mj;
        if (j < 4) {
          sj = _mm512_and_si512(_mm512_srli_epi32(W0, 8 * j), m63);
          mj = _mm512_and_si512(_mm512_srli_epi32(W1, 8 * j), m63);
        } else {
          const int k = j - 4;
          sj = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(W2, 8 * k), m15),
                               _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(W0, 8 * k + 6), m3), 4));
          mj = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(W2, 8 * k + 4), m15),
                               _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(W1, 8 * k + 6), m3), 4));
        }
        _mm512_store_ps(sjf[j], _mm512_cvtepi32_ps(sj));
        _mm512_store_ps(mjf[j], _mm512_cvtepi32_ps(mj));
      }
    }
    for (int j = 0; j < 8; ++j) {
      __m512i sh[RM], sl[RM];
      _Pragma("GCC unroll 8")
      for (int m = 0; m < RM; ++m) {
        sh[m] = _mm512_setzero_si512();
        sl[m] = _mm512_setzero_si512();
      }
      _Pragma("GCC unroll 4")
      for (int c = 0; c < 4; ++c) {
        const __m512i v = _mm512_loadu_si512(blk + q4k::kCodeOff + 256 * j + 64 * c);
        const __m512i lo = _mm512_and_si512(v, nib);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
        // Elements 32j + 4c.. (low nibbles) and 32j + 16 + 4c.. (high): steps o4 and o4 + 4.
        const int32_t* x0 = xp + (b * (kQK_K / 4) + 8 * j + c) * (2 * kQ4kRows);
        const int32_t* x1 = x0 + 4 * (2 * kQ4kRows);
        _Pragma("GCC unroll 8")
        for (int m = 0; m < RM; ++m) {
          sh[m] = _mm512_dpbusd_epi32(sh[m], lo, _mm512_set1_epi32(x0[m]));
          sh[m] = _mm512_dpbusd_epi32(sh[m], hi, _mm512_set1_epi32(x1[m]));
          sl[m] = _mm512_dpbusd_epi32(sl[m], lo, _mm512_set1_epi32(x0[kQ4kRows + m]));
          sl[m] = _mm512_dpbusd_epi32(sl[m], hi, _mm512_set1_epi32(x1[kQ4kRows + m]));
        }
      }
      const int64_t ab = b * 8 + j;
      const __m512 ds = _mm512_mul_ps(dw, _mm512_load_ps(sjf[j]));
      const __m512 dmj = _mm512_mul_ps(dm, _mm512_load_ps(mjf[j]));
      _Pragma("GCC unroll 8")
      for (int m = 0; m < RM; ++m) {
        const __m512 t = _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_slli_epi32(sh[m], 8), sl[m]));
        const float* sd = sp + ab * (2 * kQ4kRows);
        const __m512 mt = _mm512_mul_ps(dmj, _mm512_set1_ps(sd[m]));
        acc[m] = _mm512_fmadd_ps(_mm512_fmsub_ps(ds, t, mt), _mm512_set1_ps(sd[kQ4kRows + m]), acc[m]);
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
HWY_INLINE void Q4kTile(const Matrix* w, const QuantActs* qx, float* y, int64_t ldy, int64_t g,
                        int m0) {
  const int64_t K = qx->cols, nb = K / kQK_K, nb32 = K / 32;
  float acc[RM][kGroupRows] = {};
  const uint8_t* gp = w->data + size_t(g) * size_t(nb) * q4k::kGroupSuperBytes;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = gp + size_t(b) * q4k::kGroupSuperBytes;
    float dw[kGroupRows], dm[kGroupRows];
    int32_t sj[8][kGroupRows], mj[8][kGroupRows];
    for (int r = 0; r < kGroupRows; ++r) {
      uint16_t h;
      std::memcpy(&h, blk + 2 * r, 2);
      dw[r] = fp16_to_fp32(h);
      std::memcpy(&h, blk + 32 + 2 * r, 2);
      dm[r] = fp16_to_fp32(h);
      uint8_t s12[12];
      q4k::row_scales(blk, r, s12);
      for (int j = 0; j < 8; ++j) {
        uint8_t s, mn;
        q4_k_scale_min(j, s12, s, mn);
        sj[j][r] = s;
        mj[j][r] = mn;
      }
    }
    for (int j = 0; j < 8; ++j) {
      int32_t sh[RM][kGroupRows] = {}, sl[RM][kGroupRows] = {};
      for (int c = 0; c < 4; ++c) {
        const uint8_t* v = blk + q4k::kCodeOff + 256 * j + 64 * c;
        const int64_t o = b * kQK_K + 32 * j + 4 * c;
        for (int m = 0; m < RM; ++m) {
          const int8_t* xh = qx->hi.data() + (m0 + m) * K + o;
          const int8_t* xl = qx->lo.data() + (m0 + m) * K + o;
          for (int r = 0; r < kGroupRows; ++r)
            for (int i = 0; i < 4; ++i) {
              const int32_t q0 = v[4 * r + i] & 15, q1 = v[4 * r + i] >> 4;
              sh[m][r] += q0 * xh[i] + q1 * xh[16 + i];
              sl[m][r] += q0 * xl[i] + q1 * xl[16 + i];
            }
        }
      }
      const int64_t ab = b * 8 + j;
      for (int m = 0; m < RM; ++m) {
        const float xd = qx->d[(m0 + m) * nb32 + ab];
        const int32_t a = qx->s[(m0 + m) * nb32 + ab];
        for (int r = 0; r < kGroupRows; ++r) {
          const float ds = dw[r] * float(sj[j][r]), dmj = dm[r] * float(mj[j][r]);
          const float t = float(sh[m][r] * 256 + sl[m][r]);
          const float mt = dmj * float(a);
          acc[m][r] = std::fma(std::fma(ds, t, -mt), xd, acc[m][r]);
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

LMS_Q4K_ATTR void GemmQ4_K(const Matrix* w, const QuantActs* qx, int M, float* y, int64_t ldy,
                           int64_t g0, int64_t g1) {
#if HWY_TARGET == HWY_AVX3_DL
  const Q4kActs ia = Q4kInterleave(qx, M);
#define LMS_Q4K_TILE(R) Q4kTile<R>(w, qx, ia, y, ldy, g, m)
#else
#define LMS_Q4K_TILE(R) Q4kTile<R>(w, qx, y, ldy, g, m)
#endif
  for (int64_t g = g0; g < g1; ++g) {
    int m = 0;
    for (; m + 6 <= M; m += 6) LMS_Q4K_TILE(6);
    switch (M - m) {
      case 5:
        LMS_Q4K_TILE(5);
        break;
      case 4:
        LMS_Q4K_TILE(4);
        break;
      case 3:
        LMS_Q4K_TILE(3);
        break;
      case 2:
        LMS_Q4K_TILE(2);
        break;
      case 1:
        LMS_Q4K_TILE(1);
        break;
      default:
        break;
    }
  }
#undef LMS_Q4K_TILE
}

}  // namespace HWY_NAMESPACE
}  // namespace lmstream
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lmstream {

HWY_EXPORT(GemmQ4_K);

namespace {
void gemm(const Matrix& w, const float*, const QuantActs& qx, int M, float* y, int64_t ldy,
          int64_t g0, int64_t g1) {
  HWY_DYNAMIC_DISPATCH(GemmQ4_K)(&w, &qx, M, y, ldy, g0, g1);
}
}  // namespace

extern constinit const WeightFormat kQ4_KFormat = {
    .type = DType::Q4_K,
    .packed = true,
    .block_cols = kQK_K,
    .group_block_bytes = q4k::kGroupSuperBytes / 8,  // per 32 columns
    .pack = &q4k::pack,
    .unpack_row = &q4k::unpack_row,
    .gemm = &gemm,
};

}  // namespace lmstream
#endif  // HWY_ONCE
