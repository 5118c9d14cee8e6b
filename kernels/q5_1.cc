// The Q5_1 weight format (32 5-bit codes, an fp16 scale and minimum per block: w = d q + m): its
// descriptor and its group kernel compiled for every SIMD target (block_gemm-inl.h, Highway dynamic
// dispatch); the decoder and packed layout are block_formats.h's FmtQ5_1. Must not: hold anything
// shared with other formats or be selected anywhere but format.cc's table.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/q5_1.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include "kernels/block_gemm-inl.h"

HWY_BEFORE_NAMESPACE();
namespace lmstream {
namespace HWY_NAMESPACE {

void GemmQ5_1(const Matrix* w, const QuantActs* qx, int M, float* y, int64_t ldy, int64_t g0,
              int64_t g1) {
  GemmBlockGroups<FmtQ5_1>(w, qx, M, y, ldy, g0, g1);
}

}  // namespace HWY_NAMESPACE
}  // namespace lmstream
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lmstream {

HWY_EXPORT(GemmQ5_1);

namespace {
void gemm(const Matrix& w, const float*, const QuantActs& qx, int M, float* y, int64_t ldy,
          int64_t g0, int64_t g1) {
  HWY_DYNAMIC_DISPATCH(GemmQ5_1)(&w, &qx, M, y, ldy, g0, g1);
}
}  // namespace

extern constinit const WeightFormat kQ5_1Format = block_format<FmtQ5_1>(DType::Q5_1, &gemm);

}  // namespace lmstream
#endif  // HWY_ONCE
