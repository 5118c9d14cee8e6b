// Highway implementations of kernels/ops.h.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/ops.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// After highway.h (its own block, so include sorting keeps it there).
#include "hwy/contrib/math/math-inl.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/ops.h"
#include "model/dtype.h"

HWY_BEFORE_NAMESPACE();
namespace lmstream {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

HWY_INLINE float SumSquares(const float* x, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  auto s0 = hn::Zero(d), s1 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const auto a = hn::LoadU(d, x + i), b = hn::LoadU(d, x + i + N);
    s0 = hn::MulAdd(a, a, s0);
    s1 = hn::MulAdd(b, b, s1);
  }
  for (; i + N <= n; i += N) {
    const auto a = hn::LoadU(d, x + i);
    s0 = hn::MulAdd(a, a, s0);
  }
  float t = 0.f;
  for (; i < n; ++i) t = std::fma(x[i], x[i], t);
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(s0, s1))) + t;
}

void RmsNorm(const float* x, const float* w, float* out, int64_t n, float eps) {
  const float scale = 1.f / std::sqrt(SumSquares(x, n) / float(n) + eps);
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  const auto vs = hn::Set(d, scale);
  int64_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(d, x + i), vs), hn::LoadU(d, w + i)), d, out + i);
  for (; i < n; ++i) out[i] = x[i] * scale * w[i];
}

void SiluMul(float* g, const float* u, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  const auto one = hn::Set(d, 1.f);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto x = hn::LoadU(d, g + i);
    const auto sig = hn::Div(one, hn::Add(one, hn::Exp(d, hn::Neg(x))));
    hn::StoreU(hn::Mul(hn::Mul(x, sig), hn::LoadU(d, u + i)), d, g + i);
  }
  for (; i < n; ++i) g[i] = g[i] / (1.f + std::exp(-g[i])) * u[i];
}

void AddInplace(float* x, const float* y, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::Add(hn::LoadU(d, x + i), hn::LoadU(d, y + i)), d, x + i);
  for (; i < n; ++i) x[i] += y[i];
}

// Loads N keys/values starting at p as fp32.
template <bool kF16, class D>
HWY_INLINE hn::Vec<D> LoadKv(D d, const uint8_t* p) {
  if constexpr (kF16) {
    const hn::Rebind<hwy::float16_t, D> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
  } else {
    return hn::LoadU(d, reinterpret_cast<const float*>(p));
  }
}

template <bool kF16>
HWY_INLINE float KvAt(const uint8_t* p, size_t i) {
  if constexpr (kF16) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    return fp16_to_fp32(h);
  } else {
    float f;
    std::memcpy(&f, p + 4 * i, 4);
    return f;
  }
}

// Scores of HB heads against one K block of VB vectors of positions: every K vector is loaded
// (and widened) once for all HB heads, and the HB*VB*EU accumulators are independent chains, so
// the FMA units are kept busy rather than waiting on one chain's latency. EU splits the head_dim
// sum when there are few heads (multi-head attention has one per KV head).
template <bool kF16, int HB, int VB, class D>
HWY_INLINE void ScoreTile(D d, const float* q, int hd, const uint8_t* kb, int bs, float* tmp) {
  constexpr int EU = HB * VB >= 8 ? 1 : (8 / (HB * VB) > 4 ? 4 : 8 / (HB * VB));
  const size_t N = hn::Lanes(d), elt = kF16 ? 2 : 4;
  hn::Vec<D> acc[HB][VB][EU];
  for (int h = 0; h < HB; ++h)
    for (int v = 0; v < VB; ++v)
      for (int u = 0; u < EU; ++u) acc[h][v][u] = hn::Zero(d);
  int e = 0;
  for (; e + EU <= hd; e += EU) {
    for (int u = 0; u < EU; ++u) {
      hn::Vec<D> kv[VB];
      for (int v = 0; v < VB; ++v)
        kv[v] = LoadKv<kF16>(d, kb + (size_t(e + u) * bs + size_t(v) * N) * elt);
      for (int h = 0; h < HB; ++h) {
        const auto qe = hn::Set(d, q[size_t(h) * hd + e + u]);
        for (int v = 0; v < VB; ++v) acc[h][v][u] = hn::MulAdd(qe, kv[v], acc[h][v][u]);
      }
    }
  }
  for (; e < hd; ++e) {
    hn::Vec<D> kv[VB];
    for (int v = 0; v < VB; ++v)
      kv[v] = LoadKv<kF16>(d, kb + (size_t(e) * bs + size_t(v) * N) * elt);
    for (int h = 0; h < HB; ++h) {
      const auto qe = hn::Set(d, q[size_t(h) * hd + e]);
      for (int v = 0; v < VB; ++v) acc[h][v][0] = hn::MulAdd(qe, kv[v], acc[h][v][0]);
    }
  }
  for (int h = 0; h < HB; ++h)
    for (int v = 0; v < VB; ++v) {
      auto t = acc[h][v][0];
      for (int u = 1; u < EU; ++u) t = hn::Add(t, acc[h][v][u]);
      hn::StoreU(t, d, tmp + (size_t(h) * VB + v) * N);
    }
}

// Scores of every head against one K block (VB vectors of positions), in tiles of heads.
template <bool kF16, int VB, class D>
HWY_INLINE void ScoreBlock(D d, const float* q, int H, int hd, const uint8_t* kb, int bs,
                           float* tmp) {
  constexpr int HB = 16 / VB > 8 ? 8 : 16 / VB;
  const size_t N = hn::Lanes(d);
  int h = 0;
  for (; h + HB <= H; h += HB)
    ScoreTile<kF16, HB, VB>(d, q + size_t(h) * hd, hd, kb, bs, tmp + size_t(h) * VB * N);
  for (; h < H; ++h)
    ScoreTile<kF16, 1, VB>(d, q + size_t(h) * hd, hd, kb, bs, tmp + size_t(h) * VB * N);
}

// out[h][e0 .. e0 + TV*N) for HB heads: every V vector is loaded (and widened) once for all HB
// heads, and the HB*TV accumulators stay in registers over all positions.
template <bool kF16, int HB, int TV, class D>
HWY_INLINE void ValueTile(D d, const AttnGroup& a, int h0, int e0) {
  const size_t N = hn::Lanes(d), elt = kF16 ? 2 : 4;
  const int hd = a.head_dim, bs = a.block_size, n_pos = a.n_pos;
  hn::Vec<D> acc[HB][TV];
  for (int h = 0; h < HB; ++h)
    for (int v = 0; v < TV; ++v) acc[h][v] = hn::Zero(d);
  const float* w = a.scores + size_t(h0) * n_pos;
  for (int p = 0; p < n_pos; ++p) {
    const uint8_t* vr = a.v_base + size_t(a.table[p / bs]) * a.block_stride +
                        (size_t(p % bs) * size_t(hd) + size_t(e0)) * elt;
    hn::Vec<D> vv[TV];
    for (int v = 0; v < TV; ++v) vv[v] = LoadKv<kF16>(d, vr + size_t(v) * N * elt);
    for (int h = 0; h < HB; ++h) {
      const auto wh = hn::Set(d, w[size_t(h) * n_pos + p]);
      for (int v = 0; v < TV; ++v) acc[h][v] = hn::MulAdd(wh, vv[v], acc[h][v]);
    }
  }
  for (int h = 0; h < HB; ++h)
    for (int v = 0; v < TV; ++v)
      hn::StoreU(acc[h][v], d, a.out + size_t(h0 + h) * hd + size_t(e0) + size_t(v) * N);
}

double SumExpImpl(const float* x, int64_t n, float shift, float* out);

template <bool kF16>
HWY_INLINE void AttnGroupImpl(const AttnGroup& a) {
  const hn::ScalableTag<float> d;
  const int N = int(hn::Lanes(d));
  const size_t elt = kF16 ? 2 : 4;
  const int H = a.n_heads, hd = a.head_dim, bs = a.block_size, n_pos = a.n_pos;
  const float scale = 1.f / std::sqrt(float(hd));
  const int n_blocks = (n_pos + bs - 1) / bs;
  const int vb = bs % N == 0 ? bs / N : 0;
  // Scores: q . k for every head and position.
  HWY_ALIGN float tmp[8 * 4 * HWY_MAX_BYTES / sizeof(float)];
  for (int bi = 0; bi < n_blocks; ++bi) {
    const uint8_t* kb = a.k_base + size_t(a.table[bi]) * a.block_stride;
    const int valid = std::min(bs, n_pos - bi * bs);
    if (vb == 1 || vb == 2 || vb == 4) {
      // The block's scores of up to 8 heads at a time land in tmp ([head][bs]), then are scaled
      // into each head's row.
      for (int h0 = 0; h0 < H; h0 += 8) {
        const int hc = std::min(8, H - h0);
        const float* q = a.q + size_t(h0) * hd;
        if (vb == 1)
          ScoreBlock<kF16, 1>(d, q, hc, hd, kb, bs, tmp);
        else if (vb == 2)
          ScoreBlock<kF16, 2>(d, q, hc, hd, kb, bs, tmp);
        else
          ScoreBlock<kF16, 4>(d, q, hc, hd, kb, bs, tmp);
        for (int h = 0; h < hc; ++h) {
          float* sc = a.scores + size_t(h0 + h) * n_pos + size_t(bi) * bs;
          for (int j = 0; j < valid; ++j) sc[j] = tmp[size_t(h) * bs + j] * scale;
        }
      }
    } else {
      for (int h = 0; h < H; ++h) {
        const float* q = a.q + size_t(h) * hd;
        float* sc = a.scores + size_t(h) * n_pos + size_t(bi) * bs;
        for (int j = 0; j < valid; ++j) {
          float s = 0.f;
          for (int e = 0; e < hd; ++e) s = std::fma(q[e], KvAt<kF16>(kb, size_t(e) * bs + j), s);
          sc[j] = s * scale;
        }
      }
    }
  }
  // Softmax per head, vectorized (Highway's Exp is within a few ulp of std::exp).
  for (int h = 0; h < H; ++h) {
    float* sc = a.scores + size_t(h) * n_pos;
    auto vmx = hn::Set(d, -INFINITY);
    int p = 0;
    for (; p + N <= n_pos; p += N) vmx = hn::Max(vmx, hn::LoadU(d, sc + p));
    float mx = hn::GetLane(hn::MaxOfLanes(d, vmx));
    for (; p < n_pos; ++p) mx = sc[p] > mx ? sc[p] : mx;
    const float inv = float(1.0 / SumExpImpl(sc, n_pos, mx, sc));
    const auto vinv = hn::Set(d, inv);
    for (p = 0; p + N <= n_pos; p += N) hn::StoreU(hn::Mul(hn::LoadU(d, sc + p), vinv), d, sc + p);
    for (; p < n_pos; ++p) sc[p] *= inv;
  }
  // Weighted sum of values, in register tiles of 4 heads x 4 vectors of head_dim.
  if (hd % (4 * N) == 0) {
    for (int e0 = 0; e0 < hd; e0 += 4 * N) {
      int h = 0;
      for (; h + 4 <= H; h += 4) ValueTile<kF16, 4, 4>(d, a, h, e0);
      for (; h < H; ++h) ValueTile<kF16, 1, 4>(d, a, h, e0);
    }
    return;
  }
  std::memset(a.out, 0, sizeof(float) * size_t(H) * size_t(hd));
  const bool vvec = hd % N == 0;
  for (int p = 0; p < n_pos; ++p) {
    const uint8_t* vr =
        a.v_base + size_t(a.table[p / bs]) * a.block_stride + size_t(p % bs) * size_t(hd) * elt;
    for (int h = 0; h < H; ++h) {
      const float w = a.scores[size_t(h) * n_pos + p];
      float* o = a.out + size_t(h) * hd;
      if (vvec) {
        const auto vw = hn::Set(d, w);
        for (int e = 0; e < hd; e += N)
          hn::StoreU(hn::MulAdd(vw, LoadKv<kF16>(d, vr + size_t(e) * elt), hn::LoadU(d, o + e)), d,
                     o + e);
      } else {
        for (int e = 0; e < hd; ++e) o[e] = std::fma(w, KvAt<kF16>(vr, e), o[e]);
      }
    }
  }
}

void AttentionGroup(const AttnGroup& a) {
  if (a.f16)
    AttnGroupImpl<true>(a);
  else
    AttnGroupImpl<false>(a);
}

void F32ToF16(const float* x, uint16_t* y, int64_t n) {
  const hn::ScalableTag<float> d;
  const hn::Rebind<hwy::float16_t, decltype(d)> dh;
  const int64_t N = int64_t(hn::Lanes(d));
  auto* yh = reinterpret_cast<hwy::float16_t*>(y);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::DemoteTo(dh, hn::LoadU(d, x + i)), dh, yh + i);
  for (; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

RowMax RowMaxImpl(const float* x, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  const float neg_inf = -std::numeric_limits<float>::infinity();
  auto m = hn::Set(d, neg_inf);
  auto nan = hn::Zero(d);  // lanes that saw a NaN hold 1
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto v = hn::LoadU(d, x + i);
    const auto is_nan = hn::IsNaN(v);
    nan = hn::Or(nan, hn::IfThenElseZero(is_nan, hn::Set(d, 1.f)));
    m = hn::Max(m, hn::IfThenElse(is_nan, hn::Set(d, neg_inf), v));
  }
  RowMax r{hn::GetLane(hn::MaxOfLanes(d, m)), 0, hn::GetLane(hn::MaxOfLanes(d, nan)) > 0.f};
  for (; i < n; ++i) {
    if (std::isnan(x[i]))
      r.any_nan = true;
    else if (x[i] > r.value)
      r.value = x[i];
  }
  if (r.value == neg_inf) return r;
  const auto target = hn::Set(d, r.value);
  for (i = 0; i + N <= n; i += N) {
    const intptr_t at = hn::FindFirstTrue(d, hn::Eq(hn::LoadU(d, x + i), target));
    if (at >= 0) {
      r.index = i + at;
      return r;
    }
  }
  for (; i < n; ++i)
    if (x[i] == r.value) break;
  r.index = i;
  return r;
}

double SumExpImpl(const float* x, int64_t n, float shift, float* out) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  const auto vs = hn::Set(d, shift), neg_inf = hn::Set(d, -std::numeric_limits<float>::infinity());
  double total = 0;
  int64_t i = 0;
  // Float lanes within blocks of 1024 values, blocks summed in double: the error stays at a few
  // float ulps whatever the row length.
  while (i + N <= n) {
    const int64_t end = std::min(n, i + 1024);
    auto acc = hn::Zero(d);
    for (; i + N <= end; i += N) {
      const auto v = hn::LoadU(d, x + i);
      const auto e = hn::IfThenElseZero(hn::Gt(v, neg_inf), hn::Exp(d, hn::Sub(v, vs)));
      if (out) hn::StoreU(e, d, out + i);
      acc = hn::Add(acc, e);
    }
    total += double(hn::GetLane(hn::SumOfLanes(d, acc)));
  }
  for (; i < n; ++i) {
    const float e = x[i] == -std::numeric_limits<float>::infinity() ? 0.f : std::exp(x[i] - shift);
    if (out) out[i] = e;
    total += double(e);
  }
  return total;
}

}  // namespace HWY_NAMESPACE
}  // namespace lmstream
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lmstream {
HWY_EXPORT(RmsNorm);
HWY_EXPORT(SiluMul);
HWY_EXPORT(AddInplace);
HWY_EXPORT(AttentionGroup);
HWY_EXPORT(F32ToF16);
HWY_EXPORT(RowMaxImpl);
HWY_EXPORT(SumExpImpl);
RowMax row_max(const float* x, int64_t n) { return HWY_DYNAMIC_DISPATCH(RowMaxImpl)(x, n); }
double sum_exp(const float* x, int64_t n, float shift, float* out) {
  return HWY_DYNAMIC_DISPATCH(SumExpImpl)(x, n, shift, out);
}

void rmsnorm(const float* x, const float* w, float* out, int64_t n, float eps) {
  HWY_DYNAMIC_DISPATCH(RmsNorm)(x, w, out, n, eps);
}
void silu_mul(float* g, const float* u, int64_t n) { HWY_DYNAMIC_DISPATCH(SiluMul)(g, u, n); }
void add_inplace(float* x, const float* y, int64_t n) { HWY_DYNAMIC_DISPATCH(AddInplace)(x, y, n); }
void attention_group(const AttnGroup& a) { HWY_DYNAMIC_DISPATCH(AttentionGroup)(a); }
void f32_to_f16(const float* x, uint16_t* y, int64_t n) { HWY_DYNAMIC_DISPATCH(F32ToF16)(x, y, n); }

void rope(float* x, int n_heads, int head_dim, const float* cos, const float* sin,
          bool interleaved) {
  const int half = head_dim / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + size_t(h) * size_t(head_dim);
    for (int i = 0; i < half; ++i) {
      const int a = interleaved ? 2 * i : i;
      const int b = interleaved ? 2 * i + 1 : i + half;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * cos[i] - x1 * sin[i];
      v[b] = x0 * sin[i] + x1 * cos[i];
    }
  }
}
}  // namespace lmstream
#endif  // HWY_ONCE
