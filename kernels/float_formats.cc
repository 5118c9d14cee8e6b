// The float weight formats F32, F16 and BF16: used in place from the file (no packing), with float
// dot products of each weight row and each activation row. F16/BF16 weights are widened to fp32 in
// registers as they are loaded (F16C vcvtph2ps; BF16 by a 16-bit shift), and each loaded weight
// vector is used for a tile of activation rows, so decode reads every weight byte once and prefill
// shares each read across up to 4 rows. Their descriptors and the row kernels, compiled for every
// SIMD target (Highway dynamic dispatch).
// Must not: quantize activations, or reorder a dot product's reduction with the batch size (see
// matmul.h: batch invariance).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/float_formats.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/matmul.h"

HWY_BEFORE_NAMESPACE();
namespace lmstream {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Loads N weights of row p from element i as fp32: F32 directly, F16 through the F16C
// conversion (vcvtph2ps), BF16 by widening to 32 bits and shifting into the high half.
template <DType kType, class D>
HWY_INLINE hn::Vec<D> LoadW(D d, const uint8_t* HWY_RESTRICT p, int64_t i) {
  if constexpr (kType == DType::F32) {
    return hn::LoadU(d, reinterpret_cast<const float*>(p) + i);
  } else if constexpr (kType == DType::F16) {
    const hn::Rebind<hwy::float16_t, D> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p) + i));
  } else {
    const hn::RebindToUnsigned<D> du32;
    const hn::Rebind<uint16_t, D> du16;
    const auto w = hn::PromoteTo(du32, hn::LoadU(du16, reinterpret_cast<const uint16_t*>(p) + i));
    return hn::BitCast(d, hn::ShiftLeft<16>(w));
  }
}

template <DType kType>
HWY_INLINE float ScalarW(const uint8_t* p, int64_t i) {
  if constexpr (kType == DType::F32) {
    float f;
    std::memcpy(&f, p + 4 * i, 4);
    return f;
  } else {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    return kType == DType::F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
  }
}

// A tile of R weight rows x T activation rows. Every (row, activation) pair is computed the same
// way whatever the tile: one vector accumulator over K in steps of N lanes (fused multiply-add),
// its lanes summed, plus the scalar tail accumulated separately; so results do not depend on M, on
// the tile shape or on the thread (batch invariance). Each weight vector is loaded and converted
// once per tile and used for T activation rows.
template <DType kType, int R, int T>
HWY_INLINE void Tile(const uint8_t* HWY_RESTRICT w, size_t rb, const float* HWY_RESTRICT x,
                     int64_t K, float* HWY_RESTRICT y, int64_t ldy) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  hn::Vec<decltype(d)> acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = hn::Zero(d);
  int64_t i = 0;
  for (; i + N <= K; i += N) {
    hn::Vec<decltype(d)> xv[T];
    for (int t = 0; t < T; ++t) xv[t] = hn::LoadU(d, x + t * K + i);
    for (int r = 0; r < R; ++r) {
      const auto wv = LoadW<kType>(d, w + size_t(r) * rb, i);
      for (int t = 0; t < T; ++t) acc[r][t] = hn::MulAdd(wv, xv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      float tail = 0.f;
      for (int64_t k = i; k < K; ++k)
        tail = std::fma(ScalarW<kType>(w + size_t(r) * rb, k), x[t * K + k], tail);
      y[t * ldy + r] = hn::GetLane(hn::SumOfLanes(d, acc[r][t])) + tail;
    }
  }
}

// Activation bytes one block of rows may take: the block stays in L2 while every weight row of
// the call passes over it (1 MiB L2 per core on Zen 4, 2 MiB on Sapphire Rapids).
inline constexpr int64_t kActBlockBytes = 512 * 1024;

// Rows [n0, n1) for activation rows [0, M): tiles of kR weight rows by up to kT activation rows
// (register budget: kR * kT accumulators), then the remainders. Prefill takes the activation rows
// in L2-sized blocks, each met by all the weight rows in turn: weights are then read M / block
// times from memory instead of the activations n1 - n0 times from L3 (the 512-row prefill of a
// 2048-wide matrix is 4 MiB of activations). Per element nothing changes (batch invariance).
template <DType kType, int kR, int kT>
HWY_INLINE void Rows(const Matrix* w, const float* x, int M, float* y, int64_t ldy, int64_t n0,
                     int64_t n1) {
  const int64_t K = w->cols;
  const size_t rb = dtype_row_bytes(w->type, K);
  const int block = int(std::max<int64_t>(kT, kActBlockBytes / (K * 4) / kT * kT));
  for (int mb = 0; mb < M; mb += block) {
    const int me = std::min(M, mb + block);
    auto tiles = [&](int64_t n, auto rows_tag) {
      constexpr int R = decltype(rows_tag)::value;
      const uint8_t* wr = w->data + size_t(n) * rb;
      int m = mb;
      for (; m + kT <= me; m += kT) Tile<kType, R, kT>(wr, rb, x + m * K, K, y + m * ldy + n, ldy);
      for (; m < me; ++m) Tile<kType, R, 1>(wr, rb, x + m * K, K, y + m * ldy + n, ldy);
    };
    int64_t n = n0;
    for (; n + kR <= n1; n += kR) tiles(n, std::integral_constant<int, kR>());
    for (; n < n1; ++n) tiles(n, std::integral_constant<int, 1>());
  }
}

template <DType kType>
HWY_INLINE void RowsFor(const Matrix* w, const float* x, int M, float* y, int64_t ldy, int64_t n0,
                        int64_t n1) {
  // 32 vector registers on AVX-512, 16 on AVX2 and below.
  constexpr bool kWide = HWY_TARGET <= HWY_AVX3;
  if (M <= 2) {
    Rows<kType, 8, 1>(w, x, M, y, ldy, n0, n1);  // decode: 8 independent accumulator chains
  } else if constexpr (kWide) {
    Rows<kType, 4, 4>(w, x, M, y, ldy, n0, n1);
  } else {
    Rows<kType, 4, 2>(w, x, M, y, ldy, n0, n1);
  }
}

void GemmF32Rows(const Matrix* w, const float* x, int M, float* y, int64_t ldy, int64_t n0,
                 int64_t n1) {
  RowsFor<DType::F32>(w, x, M, y, ldy, n0, n1);
}

void GemmF16Rows(const Matrix* w, const float* x, int M, float* y, int64_t ldy, int64_t n0,
                 int64_t n1) {
  RowsFor<DType::F16>(w, x, M, y, ldy, n0, n1);
}

void GemmBF16Rows(const Matrix* w, const float* x, int M, float* y, int64_t ldy, int64_t n0,
                  int64_t n1) {
  RowsFor<DType::BF16>(w, x, M, y, ldy, n0, n1);
}

}  // namespace HWY_NAMESPACE
}  // namespace lmstream
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>

namespace lmstream {

HWY_EXPORT(GemmF32Rows);
HWY_EXPORT(GemmF16Rows);
HWY_EXPORT(GemmBF16Rows);

namespace {
void gemm_f32(const Matrix& w, const float* x, const QuantActs&, int M, float* y, int64_t ldy,
              int64_t g0, int64_t g1) {
  HWY_DYNAMIC_DISPATCH(GemmF32Rows)
  (&w, x, M, y, ldy, g0 * kGroupRows, std::min(g1 * kGroupRows, w.rows));
}

void gemm_f16(const Matrix& w, const float* x, const QuantActs&, int M, float* y, int64_t ldy,
              int64_t g0, int64_t g1) {
  HWY_DYNAMIC_DISPATCH(GemmF16Rows)
  (&w, x, M, y, ldy, g0 * kGroupRows, std::min(g1 * kGroupRows, w.rows));
}

void gemm_bf16(const Matrix& w, const float* x, const QuantActs&, int M, float* y, int64_t ldy,
               int64_t g0, int64_t g1) {
  HWY_DYNAMIC_DISPATCH(GemmBF16Rows)
  (&w, x, M, y, ldy, g0 * kGroupRows, std::min(g1 * kGroupRows, w.rows));
}

void unpack_in_place(const Matrix& m, int64_t n, float* out) {
  dequantize_row(m.type, m.data + dtype_row_bytes(m.type, m.cols) * size_t(n), out, m.cols);
}

// The descriptor of an in-place float format: the three differ only in type and kernel.
constexpr WeightFormat in_place_format(DType type, GemmGroupsFn gemm) {
  return {
      .type = type,
      .packed = false,
      .block_cols = 1,
      .group_block_bytes = 0,
      .pack = nullptr,
      .unpack_row = &unpack_in_place,
      .gemm = gemm,
  };
}
}  // namespace

extern constinit const WeightFormat kF32Format = in_place_format(DType::F32, &gemm_f32);
extern constinit const WeightFormat kF16Format = in_place_format(DType::F16, &gemm_f16);
extern constinit const WeightFormat kBF16Format = in_place_format(DType::BF16, &gemm_bf16);

}  // namespace lmstream
#endif  // HWY_ONCE
