// The table of weight formats: the one place that maps a DType to its descriptor (format.h).
// Must not: contain a format's layout or kernels (those live in the format's own file).
#include "kernels/format.h"

#include <stdexcept>
#include <string>

namespace lmstream {

// Defined in the format files (q8_0.cc, q4_0.cc, float_formats.cc, q4_1.cc, ..., q6_k.cc).
extern const WeightFormat kQ8_0Format, kQ4_0Format, kF32Format, kF16Format, kBF16Format;
extern const WeightFormat kQ4_1Format, kQ5_0Format, kQ5_1Format, kQ2_KFormat, kQ3_KFormat,
    kQ4_KFormat, kQ5_KFormat, kQ6_KFormat;

namespace {
const WeightFormat* const kFormats[] = {&kF32Format,  &kF16Format,  &kBF16Format, &kQ8_0Format,
                                        &kQ4_0Format, &kQ4_1Format, &kQ5_0Format, &kQ5_1Format,
                                        &kQ2_KFormat, &kQ3_KFormat, &kQ4_KFormat, &kQ5_KFormat,
                                        &kQ6_KFormat};
}  // namespace

const WeightFormat& weight_format(DType t) {
  for (const WeightFormat* f : kFormats)
    if (f->type == t) return *f;
  throw std::invalid_argument(std::string("no matmul kernels for weight type ") + dtype_name(t));
}

std::span<const WeightFormat* const> weight_formats() { return kFormats; }

}  // namespace lmstream
