// Weight number formats as stored in model files (ids are ggml's type ids), their block layouts and
// scalar reference conversions. The file format is defined here; SIMD kernels live in kernels/ and
// must agree bit for bit with the scalar code in this file for quantization.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>

namespace lmstream {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  BF16 = 30,
};

inline constexpr int kQK = 32;  // elements per legacy (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) block

#pragma pack(push, 1)
struct BlockQ8_0 {
  uint16_t d;  // fp16 scale
  int8_t qs[kQK];
};
struct BlockQ4_0 {
  uint16_t d;           // fp16 scale
  uint8_t qs[kQK / 2];  // element j in the low nibble of byte j, element j+16 in the high nibble
};
#pragma pack(pop)
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_0) == 18);

const char* dtype_name(DType t);
std::optional<DType> dtype_from_name(std::string_view name);  // "f32", "q8_0", "q4_k" (lower case)
std::optional<DType> dtype_from_ggml(uint32_t id);            // nullopt for types we do not load
// Every type we load, in id order (for tests and help texts).
std::span<const DType> dtype_all();
bool dtype_is_quantized(DType t);
int dtype_block_elems(DType t);  // 1 for float types, 32 for legacy quants, 256 for K-quants
size_t dtype_block_bytes(DType t);
// Bytes of a row of n elements; n must be a multiple of the block size (checked by callers).
size_t dtype_row_bytes(DType t, int64_t n);

float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);  // round to nearest even
inline float bf16_to_fp32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t fp32_to_bf16(float f);  // round to nearest even

// Reference quantizers, identical to ggml's quantize_row_*_ref. n is a multiple of 32. The other
// quantized types' reference code is in model/kquants.h.
void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n);
void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t n);
// Converts one row of n elements of any supported type to fp32.
void dequantize_row(DType t, const void* src, float* dst, int64_t n);
// Converts one fp32 row to type t (used by the test-model writer and --quantize).
void quantize_row(DType t, const float* src, void* dst, int64_t n);

}  // namespace lmstream
