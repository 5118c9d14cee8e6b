// Matrix kernels: packing of Q8_0/Q4_0 into 16-row groups, activation quantization, and the
// per-target group kernels (VNNI on AVX-512 machines, portable code elsewhere), dispatched with
// Highway. See matmul.h for the layout and the batch-invariance rule.
//
// Packed group layout, per (group g of 16 rows, block b of 32 columns):
//   Q8_0: 16 fp16 scales (32 B), then for k4 = 0..7: 16 rows x 4 bytes (w + 128, as u8)   = 544 B
//   Q4_0: 16 fp16 scales (32 B), then for c = 0..3: 16 rows x 4 bytes whose low nibbles are
//         elements 4c..4c+3 and high nibbles elements 4(c+4)..4(c+4)+3 (q = w + 8)       = 288 B
// Both store unsigned values u = w + bias, so sum(u * x) = sum(w * x) + bias * sum(x), and the
// correction needs only the activation block sums.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <cmath>
#include <cstring>

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
namespace hn = hwy::HWY_NAMESPACE;

// Everything one group kernel call needs.
struct QArgs {
  const uint8_t* w;     // packed data of the matrix
  size_t gbb;           // bytes per (group, block)
  int64_t nb;           // blocks per row
  int64_t rows;
  const QuantActs* qx;
  float* y;
  int64_t ldy;
  int32_t bias;         // 128 (Q8_0) or 8 (Q4_0)
};

inline int32_t LoadI32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

#if HWY_TARGET == HWY_AVX3_DL
inline constexpr size_t kPrefetchBlocks = 6;
// 16 rows x RM activation rows, VNNI. Two integer sums per (row, activation row): hi and lo terms.
template <int RM, bool kQ4>
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
  const uint8_t* gp = a.w + size_t(g) * size_t(a.nb) * a.gbb;
  const __m512i nib = _mm512_set1_epi8(0x0F);
  for (int64_t b = 0; b < a.nb; ++b) {
    const uint8_t* blk = gp + size_t(b) * a.gbb;
    if (m0 == 0) {
      // The first tile of a group streams its weights from memory (later tiles find them in
      // cache): fetch a few blocks ahead.
      const char* pf = reinterpret_cast<const char*>(blk + kPrefetchBlocks * a.gbb);
      for (size_t o = 0; o < a.gbb; o += 64) _mm_prefetch(pf + o, _MM_HINT_T0);
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)));
    const uint8_t* wq = blk + 32;
    __m512i sh[RM], sl[RM];
    _Pragma("GCC unroll 16")
    for (int m = 0; m < RM; ++m) {
      sh[m] = _mm512_setzero_si512();
      sl[m] = _mm512_setzero_si512();
    }
    if constexpr (!kQ4) {
      _Pragma("GCC unroll 16")
      for (int k4 = 0; k4 < 8; ++k4) {
        const __m512i w = _mm512_loadu_si512(wq + 64 * k4);
        _Pragma("GCC unroll 16")
        for (int m = 0; m < RM; ++m) {
          const int64_t o = b * 32 + 4 * k4;
          sh[m] = _mm512_dpbusd_epi32(sh[m], w, _mm512_set1_epi32(LoadI32(xh[m] + o)));
          sl[m] = _mm512_dpbusd_epi32(sl[m], w, _mm512_set1_epi32(LoadI32(xl[m] + o)));
        }
      }
    } else {
      _Pragma("GCC unroll 16")
      for (int c = 0; c < 4; ++c) {
        const __m512i v = _mm512_loadu_si512(wq + 64 * c);
        const __m512i lo = _mm512_and_si512(v, nib);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
        _Pragma("GCC unroll 16")
        for (int m = 0; m < RM; ++m) {
          const int64_t o1 = b * 32 + 4 * c, o2 = b * 32 + 4 * (c + 4);
          sh[m] = _mm512_dpbusd_epi32(sh[m], lo, _mm512_set1_epi32(LoadI32(xh[m] + o1)));
          sl[m] = _mm512_dpbusd_epi32(sl[m], lo, _mm512_set1_epi32(LoadI32(xl[m] + o1)));
          sh[m] = _mm512_dpbusd_epi32(sh[m], hi, _mm512_set1_epi32(LoadI32(xh[m] + o2)));
          sl[m] = _mm512_dpbusd_epi32(sl[m], hi, _mm512_set1_epi32(LoadI32(xl[m] + o2)));
        }
      }
    }
    _Pragma("GCC unroll 16")
    for (int m = 0; m < RM; ++m) {
      const __m512i t = _mm512_sub_epi32(_mm512_add_epi32(_mm512_slli_epi32(sh[m], 8), sl[m]),
                                         _mm512_set1_epi32(a.bias * xs[m][b]));
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
template <int RM, bool kQ4>
HWY_INLINE void Tile(const QArgs& a, int64_t g, int m0) {
  const int64_t K = a.qx->cols;
  float acc[RM][kGroupRows] = {};
  const uint8_t* gp = a.w + size_t(g) * size_t(a.nb) * a.gbb;
  for (int64_t b = 0; b < a.nb; ++b) {
    const uint8_t* blk = gp + size_t(b) * a.gbb;
    const uint8_t* wq = blk + 32;
    float dw[kGroupRows];
    for (int r = 0; r < kGroupRows; ++r) {
      uint16_t h;
      std::memcpy(&h, blk + 2 * r, 2);
      dw[r] = fp16_to_fp32(h);
    }
    int32_t sh[RM][kGroupRows] = {}, sl[RM][kGroupRows] = {};
    for (int m = 0; m < RM; ++m) {
      const int8_t* xh = a.qx->hi.data() + (m0 + m) * K + b * 32;
      const int8_t* xl = a.qx->lo.data() + (m0 + m) * K + b * 32;
      for (int c = 0; c < (kQ4 ? 4 : 8); ++c) {
        for (int r = 0; r < kGroupRows; ++r) {
          for (int j = 0; j < 4; ++j) {
            const uint8_t v = wq[64 * c + 4 * r + j];
            if constexpr (kQ4) {
              const int32_t w1 = v & 15, w2 = v >> 4;
              sh[m][r] += w1 * xh[4 * c + j] + w2 * xh[4 * (c + 4) + j];
              sl[m][r] += w1 * xl[4 * c + j] + w2 * xl[4 * (c + 4) + j];
            } else {
              sh[m][r] += int32_t(v) * xh[4 * c + j];
              sl[m][r] += int32_t(v) * xl[4 * c + j];
            }
          }
        }
      }
    }
    for (int m = 0; m < RM; ++m) {
      const float xd = a.qx->d[(m0 + m) * a.nb + b];
      const int32_t corr = a.bias * a.qx->s[(m0 + m) * a.nb + b];
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

template <bool kQ4>
LMS_VNNI_ATTR void GroupsImpl(const QArgs& a, int M, int64_t g0, int64_t g1) {
  for (int64_t g = g0; g < g1; ++g) {
    int m = 0;
    for (; m + 6 <= M; m += 6) Tile<6, kQ4>(a, g, m);
    switch (M - m) {
      case 5: Tile<5, kQ4>(a, g, m); break;
      case 4: Tile<4, kQ4>(a, g, m); break;
      case 3: Tile<3, kQ4>(a, g, m); break;
      case 2: Tile<2, kQ4>(a, g, m); break;
      case 1: Tile<1, kQ4>(a, g, m); break;
      default: break;
    }
  }
}

LMS_VNNI_ATTR void QGemmGroups(const Matrix* w, const QuantActs* qx, int M, float* y, int64_t ldy,
                               int64_t g0, int64_t g1) {
  QArgs a{w->data, w->group_block_bytes(), w->blocks(), w->rows, qx, y, ldy,
          w->type == DType::Q4_0 ? 8 : 128};
  if (w->type == DType::Q4_0)
    GroupsImpl<true>(a, M, g0, g1);
  else
    GroupsImpl<false>(a, M, g0, g1);
}

// Two-term int8 quantization of activation rows r0..r1 (see QuantActs).
void QuantizeRows(const float* x, int64_t cols, QuantActs* out, int64_t r0, int64_t r1) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const int64_t N = int64_t(hn::Lanes(df));
  const int64_t nb = cols / 32;
  const auto k256 = hn::Set(df, 256.f), lo_max = hn::Set(df, 127.f), lo_min = hn::Set(df, -127.f);
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      const float* xb = x + r * cols + b * 32;
      auto mx = hn::Zero(df);
      for (int64_t i = 0; i < 32; i += N) mx = hn::Max(mx, hn::Abs(hn::LoadU(df, xb + i)));
      const float amax = hn::GetLane(hn::MaxOfLanes(df, mx));
      const float d = amax / 127.f;
      const auto vid = hn::Set(df, d != 0.f ? 1.f / d : 0.f);
      int8_t* qh = out->hi.data() + r * cols + b * 32;
      int8_t* ql = out->lo.data() + r * cols + b * 32;
      auto sum = hn::Zero(di);
      for (int64_t i = 0; i < 32; i += N) {
        const auto v = hn::Mul(hn::LoadU(df, xb + i), vid);  // |v| <= 127
        const auto hf = hn::Round(v);
        const auto lf = hn::Min(hn::Max(hn::Round(hn::Mul(hn::Sub(v, hf), k256)), lo_min), lo_max);
        const auto h = hn::ConvertTo(di, hf), l = hn::ConvertTo(di, lf);
        hn::StoreU(hn::DemoteTo(d8, h), d8, qh + i);
        hn::StoreU(hn::DemoteTo(d8, l), d8, ql + i);
        sum = hn::Add(sum, hn::Add(hn::ShiftLeft<8>(h), l));
      }
      out->d[r * nb + b] = d / 256.f;
      out->s[r * nb + b] = hn::GetLane(hn::SumOfLanes(di, sum));
    }
  }
}

// Float weights in place: y[m][n] = dot(W[n], x[m]) with a fixed reduction order.
HWY_INLINE float Dot(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(d, a + i + N), hn::LoadU(d, b + i + N), s1);
    s2 = hn::MulAdd(hn::LoadU(d, a + i + 2 * N), hn::LoadU(d, b + i + 2 * N), s2);
    s3 = hn::MulAdd(hn::LoadU(d, a + i + 3 * N), hn::LoadU(d, b + i + 3 * N), s3);
  }
  for (; i + N <= n; i += N) s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
  float tail = 0.f;
  for (; i < n; ++i) tail = std::fma(a[i], b[i], tail);
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3)))) + tail;
}

void FGemmRows(const Matrix* w, const float* x, int M, float* y, int64_t ldy, int64_t n0,
               int64_t n1) {
  const int64_t K = w->cols;
  thread_local std::vector<float> row;
  if (w->type != DType::F32 && int64_t(row.size()) < K) row.resize(size_t(K));
  const size_t rb = dtype_row_bytes(w->type, K);
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* src = w->data + size_t(n) * rb;
    const float* wr;
    if (w->type == DType::F32) {
      wr = reinterpret_cast<const float*>(src);
    } else {
      dequantize_row(w->type, src, row.data(), K);
      wr = row.data();
    }
    for (int m = 0; m < M; ++m) y[m * ldy + n] = Dot(wr, x + m * K, K);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace lmstream
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>
#include <cstdlib>
#include <new>
#include <stdexcept>

#include "kernels/threadpool.h"

namespace lmstream {

HWY_EXPORT(QGemmGroups);
HWY_EXPORT(FGemmRows);
HWY_EXPORT(QuantizeRows);

size_t Matrix::group_block_bytes() const {
  return type == DType::Q4_0 ? 32 + 256 : 32 + 512;
}

namespace {
std::shared_ptr<uint8_t> alloc_aligned(size_t n) {
  void* p = std::aligned_alloc(64, (n + 63) / 64 * 64);
  if (!p) throw std::bad_alloc();
  return std::shared_ptr<uint8_t>(static_cast<uint8_t*>(p), [](uint8_t* q) { std::free(q); });
}
}  // namespace

Matrix Matrix::prepare(const Tensor& t) {
  Matrix m;
  m.type = t.type;
  m.rows = t.rows;
  m.cols = t.cols;
  if (t.type != DType::Q8_0 && t.type != DType::Q4_0) {
    m.data = t.data;
    m.bytes = t.nbytes();
    return m;
  }
  m.packed = true;
  const int64_t nb = t.cols / 32, ng = m.groups();
  const size_t gbb = m.group_block_bytes();
  m.bytes = size_t(ng) * size_t(nb) * gbb;
  m.storage = alloc_aligned(m.bytes);
  m.data = m.storage.get();
  uint8_t* out = m.storage.get();
  const bool q4 = t.type == DType::Q4_0;
  for (int64_t g = 0; g < ng; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* blk = out + (size_t(g) * size_t(nb) + size_t(b)) * gbb;
      uint8_t* wq = blk + 32;
      for (int r = 0; r < kGroupRows; ++r) {
        const int64_t n = g * kGroupRows + r;
        uint16_t d = 0;
        if (q4) {
          if (n < t.rows) {
            const auto* src = reinterpret_cast<const BlockQ4_0*>(t.row(n)) + b;
            std::memcpy(&d, &src->d, 2);
            for (int c = 0; c < 4; ++c)
              for (int j = 0; j < 4; ++j) {
                auto elem = [&](int e) {
                  return e < 16 ? (src->qs[e] & 15) : (src->qs[e - 16] >> 4);
                };
                wq[64 * c + 4 * r + j] = uint8_t(elem(4 * c + j) | (elem(4 * (c + 4) + j) << 4));
              }
          } else {
            for (int c = 0; c < 4; ++c)
              for (int j = 0; j < 4; ++j) wq[64 * c + 4 * r + j] = 0x88;
          }
        } else {
          if (n < t.rows) {
            const auto* src = reinterpret_cast<const BlockQ8_0*>(t.row(n)) + b;
            std::memcpy(&d, &src->d, 2);
            for (int k4 = 0; k4 < 8; ++k4)
              for (int j = 0; j < 4; ++j)
                wq[64 * k4 + 4 * r + j] = uint8_t(int(src->qs[4 * k4 + j]) + 128);
          } else {
            for (int k4 = 0; k4 < 8; ++k4)
              for (int j = 0; j < 4; ++j) wq[64 * k4 + 4 * r + j] = 128;
          }
        }
        std::memcpy(blk + 2 * r, &d, 2);
      }
    }
  }
  return m;
}

void matrix_row_to_f32(const Matrix& m, int64_t n, float* out) {
  if (!m.packed) {
    dequantize_row(m.type, m.data + dtype_row_bytes(m.type, m.cols) * size_t(n), out, m.cols);
    return;
  }
  const int64_t g = n / kGroupRows, nb = m.blocks();
  const int r = int(n % kGroupRows);
  const size_t gbb = m.group_block_bytes();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = m.data + (size_t(g) * size_t(nb) + size_t(b)) * gbb;
    uint16_t h;
    std::memcpy(&h, blk + 2 * r, 2);
    const float d = fp16_to_fp32(h);
    const uint8_t* wq = blk + 32;
    for (int e = 0; e < 32; ++e) {
      int w;
      if (m.type == DType::Q4_0) {
        const int c = (e / 4) % 4, j = e % 4;
        const uint8_t v = wq[64 * c + 4 * r + j];
        w = (e < 16 ? (v & 15) : (v >> 4)) - 8;
      } else {
        w = int(wq[64 * (e / 4) + 4 * r + e % 4]) - 128;
      }
      out[b * 32 + e] = float(w) * d;
    }
  }
}

void quantize_acts(const float* x, int rows, int64_t cols, QuantActs& out, ThreadPool* pool) {
  if (cols % 32 != 0) throw std::invalid_argument("quantize_acts: cols must be a multiple of 32");
  const int64_t nb = cols / 32;
  out.rows = rows;
  out.cols = cols;
  const size_t n = size_t(rows) * size_t(cols);
  if (out.hi.size() < n) {
    out.hi.resize(n);
    out.lo.resize(n);
  }
  if (out.d.size() < size_t(rows) * size_t(nb)) {
    out.d.resize(size_t(rows) * size_t(nb));
    out.s.resize(size_t(rows) * size_t(nb));
  }
  auto work = [&](int64_t r0, int64_t r1) {
    HWY_DYNAMIC_DISPATCH(QuantizeRows)(x, cols, &out, r0, r1);
  };
  if (pool && rows >= 8)
    pool->parallel_for(rows, std::max<int64_t>(1, rows / (pool->size() * 4)), work);
  else
    work(0, rows);
}

void matmul(std::span<const MatmulJob> jobs, const float* x, int M, QuantActs& qx,
            ThreadPool& pool) {
  if (jobs.empty() || M <= 0) return;
  const int64_t K = jobs[0].w->cols;
  bool any_q = false;
  for (const auto& j : jobs) {
    if (j.w->cols != K) throw std::invalid_argument("matmul: jobs disagree on input width");
    any_q |= j.w->packed;
  }
  if (any_q) quantize_acts(x, M, K, qx, &pool);
  // One task = one group of 16 output rows of one job.
  int64_t total = 0;
  int64_t starts[8];
  if (jobs.size() > 8) throw std::invalid_argument("matmul: at most 8 jobs");
  for (size_t i = 0; i < jobs.size(); ++i) {
    starts[i] = total;
    total += jobs[i].w->groups();
  }
  auto run = [&](int64_t t0, int64_t t1) {
    for (size_t i = 0; i < jobs.size() && t0 < t1; ++i) {
      const int64_t s = starts[i], e = s + jobs[i].w->groups();
      if (t0 >= e) continue;
      const int64_t a = t0 - s, b = std::min(t1, e) - s;
      const MatmulJob& j = jobs[i];
      if (j.w->packed) {
        HWY_DYNAMIC_DISPATCH(QGemmGroups)(j.w, &qx, M, j.y, j.ldy, a, b);
      } else {
        HWY_DYNAMIC_DISPATCH(FGemmRows)
        (j.w, x, M, j.y, j.ldy, a * kGroupRows, std::min(b * kGroupRows, j.w->rows));
      }
      t0 = s + b;
    }
  };
  // Small products are not worth waking other threads for.
  double work = 0;
  for (const auto& j : jobs) work += double(j.w->rows) * double(K) * double(M);
  if (work < double(1 << 20)) {
    run(0, total);
    return;
  }
  const int64_t chunk = std::max<int64_t>(1, total / (int64_t(pool.size()) * 8));
  pool.parallel_for(total, chunk, run);
}

const char* kernels_target_name() {
  return hwy::TargetName(hwy::SupportedTargets() & HWY_TARGETS & -(hwy::SupportedTargets() & HWY_TARGETS));
}

std::vector<std::vector<float>> matmul_all_targets(const Matrix& w, const float* x, int M) {
  std::vector<std::vector<float>> out;
  QuantActs qx;
  quantize_acts(x, M, w.cols, qx, nullptr);
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    std::vector<float> y(size_t(M) * size_t(w.rows));
    if (w.packed)
      HWY_DYNAMIC_DISPATCH(QGemmGroups)(&w, &qx, M, y.data(), w.rows, 0, w.groups());
    else
      HWY_DYNAMIC_DISPATCH(FGemmRows)(&w, x, M, y.data(), w.rows, 0, w.rows);
    out.push_back(std::move(y));
  }
  hwy::SetSupportedTargetsForTest(0);
  return out;
}

}  // namespace lmstream
#endif  // HWY_ONCE
