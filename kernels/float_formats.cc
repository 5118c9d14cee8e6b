// The float weight formats F32, F16 and BF16: used in place (no packing), with float dot products
// of each weight row and each activation row; F16/BF16 rows are converted to fp32 first. Their
// descriptors and the row kernels, compiled for every SIMD target (Highway dynamic dispatch).
// Must not: quantize activations, or reorder a dot product's reduction with the batch size (see
// matmul.h: batch invariance).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/float_formats.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <cmath>
#include <vector>

#include "kernels/matmul.h"

HWY_BEFORE_NAMESPACE();
namespace lmstream {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// y[m][n] = dot(W[n], x[m]) with a fixed reduction order.
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

// Output rows [n0, n1). kConvert: the rows are F16/BF16, converted to fp32 one at a time.
template <bool kConvert>
HWY_INLINE void RowsImpl(const Matrix* w, const float* x, int M, float* y, int64_t ldy, int64_t n0,
                         int64_t n1) {
  const int64_t K = w->cols;
  thread_local std::vector<float> row;
  if (kConvert && int64_t(row.size()) < K) row.resize(size_t(K));
  const size_t rb = dtype_row_bytes(w->type, K);
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* src = w->data + size_t(n) * rb;
    const float* wr;
    if constexpr (!kConvert) {
      wr = reinterpret_cast<const float*>(src);
    } else {
      dequantize_row(w->type, src, row.data(), K);
      wr = row.data();
    }
    for (int m = 0; m < M; ++m) y[m * ldy + n] = Dot(wr, x + m * K, K);
  }
}

void GemmF32Rows(const Matrix* w, const float* x, int M, float* y, int64_t ldy, int64_t n0,
                 int64_t n1) {
  RowsImpl<false>(w, x, M, y, ldy, n0, n1);
}

void GemmConvertedRows(const Matrix* w, const float* x, int M, float* y, int64_t ldy, int64_t n0,
                       int64_t n1) {
  RowsImpl<true>(w, x, M, y, ldy, n0, n1);
}

}  // namespace HWY_NAMESPACE
}  // namespace lmstream
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>

namespace lmstream {

HWY_EXPORT(GemmF32Rows);
HWY_EXPORT(GemmConvertedRows);

namespace {
void gemm_f32(const Matrix& w, const float* x, const QuantActs&, int M, float* y, int64_t ldy,
              int64_t g0, int64_t g1) {
  HWY_DYNAMIC_DISPATCH(GemmF32Rows)
  (&w, x, M, y, ldy, g0 * kGroupRows, std::min(g1 * kGroupRows, w.rows));
}

void gemm_converted(const Matrix& w, const float* x, const QuantActs&, int M, float* y, int64_t ldy,
                    int64_t g0, int64_t g1) {
  HWY_DYNAMIC_DISPATCH(GemmConvertedRows)
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
extern constinit const WeightFormat kF16Format = in_place_format(DType::F16, &gemm_converted);
extern constinit const WeightFormat kBF16Format = in_place_format(DType::BF16, &gemm_converted);

}  // namespace lmstream
#endif  // HWY_ONCE
