// The Q3_K weight format (256-element super-blocks of 3-bit codes with 16 6-bit signed scales): its
// descriptor and its group kernel compiled for every SIMD target (block_gemm-inl.h, Highway dynamic
// dispatch); the decoder and packed layout are block_formats.h's FmtQ3_K. Must not: hold anything
// shared with other formats or be selected anywhere but format.cc's table.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/q3_k.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include "kernels/block_gemm-inl.h"

HWY_BEFORE_NAMESPACE();
namespace lmstream {
namespace HWY_NAMESPACE {

void GemmQ3_K(const Matrix* w, const QuantActs* qx, int M, float* y, int64_t ldy, int64_t g0,
              int64_t g1) {
  GemmBlockGroups<FmtQ3_K>(w, qx, M, y, ldy, g0, g1);
}

}  // namespace HWY_NAMESPACE
}  // namespace lmstream
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lmstream {

HWY_EXPORT(GemmQ3_K);

namespace {
void gemm(const Matrix& w, const float*, const QuantActs& qx, int M, float* y, int64_t ldy,
          int64_t g0, int64_t g1) {
  HWY_DYNAMIC_DISPATCH(GemmQ3_K)(&w, &qx, M, y, ldy, g0, g1);
}
}  // namespace

extern constinit const WeightFormat kQ3_KFormat = block_format<FmtQ3_K>(DType::Q3_K, &gemm);

}  // namespace lmstream
#endif  // HWY_ONCE
