// Highway implementations of kernels/ops.h.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/ops.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

#include <cmath>
#include <cstring>

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
  for (; i + N <= n; i += N) hn::StoreU(hn::Add(hn::LoadU(d, x + i), hn::LoadU(d, y + i)), d, x + i);
  for (; i < n; ++i) x[i] += y[i];
}

template <bool kF16>
HWY_INLINE float DotKv(const float* q, const uint8_t* k, int n) {
  const hn::ScalableTag<float> d;
  const int N = int(hn::Lanes(d));
  auto s0 = hn::Zero(d), s1 = hn::Zero(d);
  int i = 0;
  if constexpr (kF16) {
    const hn::Rebind<hwy::float16_t, decltype(d)> dh;
    const auto* kh = reinterpret_cast<const hwy::float16_t*>(k);
    for (; i + 2 * N <= n; i += 2 * N) {
      s0 = hn::MulAdd(hn::LoadU(d, q + i), hn::PromoteTo(d, hn::LoadU(dh, kh + i)), s0);
      s1 = hn::MulAdd(hn::LoadU(d, q + i + N), hn::PromoteTo(d, hn::LoadU(dh, kh + i + N)), s1);
    }
    for (; i + N <= n; i += N)
      s0 = hn::MulAdd(hn::LoadU(d, q + i), hn::PromoteTo(d, hn::LoadU(dh, kh + i)), s0);
    float t = 0.f;
    for (; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, k + 2 * i, 2);
      t = std::fma(q[i], fp16_to_fp32(h), t);
    }
    return hn::GetLane(hn::SumOfLanes(d, hn::Add(s0, s1))) + t;
  } else {
    const auto* kf = reinterpret_cast<const float*>(k);
    for (; i + 2 * N <= n; i += 2 * N) {
      s0 = hn::MulAdd(hn::LoadU(d, q + i), hn::LoadU(d, kf + i), s0);
      s1 = hn::MulAdd(hn::LoadU(d, q + i + N), hn::LoadU(d, kf + i + N), s1);
    }
    for (; i + N <= n; i += N) s0 = hn::MulAdd(hn::LoadU(d, q + i), hn::LoadU(d, kf + i), s0);
    float t = 0.f;
    for (; i < n; ++i) t = std::fma(q[i], kf[i], t);
    return hn::GetLane(hn::SumOfLanes(d, hn::Add(s0, s1))) + t;
  }
}

template <bool kF16>
HWY_INLINE void AxpyKv(float a, const uint8_t* v, float* out, int n) {
  const hn::ScalableTag<float> d;
  const int N = int(hn::Lanes(d));
  const auto va = hn::Set(d, a);
  int i = 0;
  if constexpr (kF16) {
    const hn::Rebind<hwy::float16_t, decltype(d)> dh;
    const auto* vh = reinterpret_cast<const hwy::float16_t*>(v);
    for (; i + N <= n; i += N)
      hn::StoreU(hn::MulAdd(va, hn::PromoteTo(d, hn::LoadU(dh, vh + i)), hn::LoadU(d, out + i)), d,
                 out + i);
    for (; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, v + 2 * i, 2);
      out[i] = std::fma(a, fp16_to_fp32(h), out[i]);
    }
  } else {
    const auto* vf = reinterpret_cast<const float*>(v);
    for (; i + N <= n; i += N)
      hn::StoreU(hn::MulAdd(va, hn::LoadU(d, vf + i), hn::LoadU(d, out + i)), d, out + i);
    for (; i < n; ++i) out[i] = std::fma(a, vf[i], out[i]);
  }
}

template <bool kF16>
HWY_INLINE void AttnImpl(const AttnHead& a) {
  const size_t elt = kF16 ? 2 : 4;
  const float scale = 1.f / std::sqrt(float(a.head_dim));
  float mx = -INFINITY;
  for (int p = 0; p < a.n_pos; ++p) {
    const size_t off = size_t(a.table[p / a.block_size]) * a.block_stride +
                       size_t(p % a.block_size) * size_t(a.head_dim) * elt;
    const float s = DotKv<kF16>(a.q, a.k_base + off, a.head_dim) * scale;
    a.scores[p] = s;
    mx = s > mx ? s : mx;
  }
  float sum = 0.f;
  for (int p = 0; p < a.n_pos; ++p) {
    a.scores[p] = std::exp(a.scores[p] - mx);
    sum += a.scores[p];
  }
  const float inv = 1.f / sum;
  std::memset(a.out, 0, sizeof(float) * size_t(a.head_dim));
  for (int p = 0; p < a.n_pos; ++p) {
    const size_t off = size_t(a.table[p / a.block_size]) * a.block_stride +
                       size_t(p % a.block_size) * size_t(a.head_dim) * elt;
    AxpyKv<kF16>(a.scores[p] * inv, a.v_base + off, a.out, a.head_dim);
  }
}

void AttentionHead(const AttnHead& a) {
  if (a.f16)
    AttnImpl<true>(a);
  else
    AttnImpl<false>(a);
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

}  // namespace HWY_NAMESPACE
}  // namespace lmstream
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lmstream {
HWY_EXPORT(RmsNorm);
HWY_EXPORT(SiluMul);
HWY_EXPORT(AddInplace);
HWY_EXPORT(AttentionHead);
HWY_EXPORT(F32ToF16);

void rmsnorm(const float* x, const float* w, float* out, int64_t n, float eps) {
  HWY_DYNAMIC_DISPATCH(RmsNorm)(x, w, out, n, eps);
}
void silu_mul(float* g, const float* u, int64_t n) { HWY_DYNAMIC_DISPATCH(SiluMul)(g, u, n); }
void add_inplace(float* x, const float* y, int64_t n) { HWY_DYNAMIC_DISPATCH(AddInplace)(x, y, n); }
void attention_head(const AttnHead& a) { HWY_DYNAMIC_DISPATCH(AttentionHead)(a); }
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
