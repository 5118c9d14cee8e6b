// The Q4_0 weight format (32 4-bit weights q = w + 8 and one fp16 scale per block): its codes in
// the packed group layout (group_layout.h: 4-bit codes u = q), its descriptor, and its group kernel
// compiled for every SIMD target (group_tile-inl.h, Highway dynamic dispatch).
// Must not: hold anything shared with other formats (that belongs in group_layout.h or
// group_tile-inl.h) or be selected anywhere but format.cc's table.

// Compiled once, not per target.
#ifndef LMSTREAM_KERNELS_Q4_0_ONCE_
#define LMSTREAM_KERNELS_Q4_0_ONCE_
#include "kernels/group_layout.h"

namespace lmstream {
struct Q4_0 : GroupLayout<4, 8> {
  using Block = BlockQ4_0;
  // The file stores element e in the low nibble of qs[e] and element e + 16 in its high nibble.
  static uint16_t codes(const Block& src, uint8_t* u) {
    for (int e = 0; e < kBlockCols; ++e) u[e] = e < 16 ? (src.qs[e] & 15) : (src.qs[e - 16] >> 4);
    uint16_t d;
    std::memcpy(&d, &src.d, 2);
    return d;
  }
};
static_assert(Q4_0::kGroupBlockBytes == 288);
}  // namespace lmstream
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/q4_0.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include "kernels/group_tile-inl.h"

HWY_BEFORE_NAMESPACE();
namespace lmstream {
namespace HWY_NAMESPACE {

LMS_VNNI_ATTR void GemmQ4_0(const Matrix* w, const QuantActs* qx, int M, float* y, int64_t ldy,
                            int64_t g0, int64_t g1) {
  GemmGroups<Q4_0>(w, qx, M, y, ldy, g0, g1);
}

}  // namespace HWY_NAMESPACE
}  // namespace lmstream
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lmstream {

HWY_EXPORT(GemmQ4_0);

namespace {
void gemm(const Matrix& w, const float*, const QuantActs& qx, int M, float* y, int64_t ldy,
          int64_t g0, int64_t g1) {
  HWY_DYNAMIC_DISPATCH(GemmQ4_0)(&w, &qx, M, y, ldy, g0, g1);
}
}  // namespace

extern constinit const WeightFormat kQ4_0Format = group_format<Q4_0>(DType::Q4_0, &gemm);

}  // namespace lmstream
#endif  // HWY_ONCE
