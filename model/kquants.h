// The K-quant (Q2_K .. Q6_K, 256-element super-blocks) and the legacy Q4_1/Q5_0/Q5_1 block
// formats of GGUF files: their block structs (byte-exact with ggml's), scalar reference
// dequantizers and reference quantizers following llama.cpp's published method (ggml-quants.c's
// quantize_row_*_ref: make_qkx2_quants, make_qx_quants, make_q3_quants). dtype.cc dispatches here.
// Layouts: ../shared/reference/kquants.md section 2 (restated in the comments below).
// Must not: depend on a SIMD target (the kernels in kernels/ read these blocks).
#pragma once

#include <cstdint>

namespace lmstream {

inline constexpr int kQK_K = 256;  // elements per K-quant super-block

#pragma pack(push, 1)
// x = d * q + m, q = 4-bit code (element e < 16: low nibble of qs[e]; e >= 16: high of qs[e-16]).
struct BlockQ4_1 {
  uint16_t d, m;
  uint8_t qs[16];
};
// x = d * (q - 16), q = 4 low bits as Q4_0 plus bit e of the little-endian u32 qh.
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
};
// x = d * q + m, q as Q5_0.
struct BlockQ5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[16];
};
// 16 sub-blocks of 16: x = d * (scales[j] & 15) * q - dmin * (scales[j] >> 4), j = e / 16,
// q = (qs[32h + l] >> 2s) & 3 with h = e / 128, s = e % 128 / 32, l = e % 32.
struct BlockQ2_K {
  uint8_t scales[16];
  uint8_t qs[64];
  uint16_t d, dmin;
};
// 16 sub-blocks of 16: x = d * (u_j - 32) * (low + 4 * high - 4); low as Q2_K's q, high = bit
// e / 32 of hmask[e % 32]; u_j = 6-bit codes packed in scales (see unpack_q3_k_scales).
struct BlockQ3_K {
  uint8_t hmask[32];
  uint8_t qs[64];
  uint8_t scales[12];
  uint16_t d;
};
// 8 sub-blocks of 32: x = d * s_j * q - dmin * m_j (6-bit s_j, m_j in scales, see
// q4_k_scale_min); q = nibble of qs[32c + r % 32] (c = e / 64, r = e % 64; high nibble if r >= 32).
struct BlockQ4_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
// As Q4_K plus a 5th bit: bit e / 32 of qh[e % 32].
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
// 16 sub-blocks of 16: x = d * scales[j] * (q - 32), q = low 4 bits (ql[64h + 32(s & 1) + l],
// high nibble if s >= 2) | high 2 bits ((qh[32h + l] >> 2s) & 3) << 4.
struct BlockQ6_K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
#pragma pack(pop)
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);

// Scale code s and min code m of sub-block j (0..7) of a Q4_K/Q5_K scales array.
inline void q4_k_scale_min(int j, const uint8_t* q, uint8_t& s, uint8_t& m) {
  if (j < 4) {
    s = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    s = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}
// The 16 signed scales (u_j - 32) of a Q3_K block.
void unpack_q3_k_scales(const uint8_t* scales12, int8_t out[16]);

// Reference dequantizers: n elements (a multiple of the block size) to fp32.
void dequantize_row_q4_1(const BlockQ4_1* x, float* y, int64_t n);
void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t n);
void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t n);
void dequantize_row_q2_k(const BlockQ2_K* x, float* y, int64_t n);
void dequantize_row_q3_k(const BlockQ3_K* x, float* y, int64_t n);
void dequantize_row_q4_k(const BlockQ4_K* x, float* y, int64_t n);
void dequantize_row_q5_k(const BlockQ5_K* x, float* y, int64_t n);
void dequantize_row_q6_k(const BlockQ6_K* x, float* y, int64_t n);

// Reference quantizers (llama.cpp's quantize_row_*_ref method, no importance matrix).
void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t n);
void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t n);
void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t n);
void quantize_row_q2_k(const float* x, BlockQ2_K* y, int64_t n);
void quantize_row_q3_k(const float* x, BlockQ3_K* y, int64_t n);
void quantize_row_q4_k(const float* x, BlockQ4_K* y, int64_t n);
void quantize_row_q5_k(const float* x, BlockQ5_K* y, int64_t n);
void quantize_row_q6_k(const float* x, BlockQ6_K* y, int64_t n);

}  // namespace lmstream
