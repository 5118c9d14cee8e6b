// Scalar reference conversions between the weight formats of dtype.h: fp16/bf16 rounding and
// ggml's reference Q8_0/Q4_0 quantizers (bit-exact with quantize_row_*_ref), the type table, and
// the dispatch to the other formats' reference code in kquants.cc.
#include "model/dtype.h"

#include "model/kquants.h"

#include <algorithm>
#include <cmath>

namespace lmstream {

namespace {

struct TypeInfo {
  DType type;
  const char* name;
  int block_elems;
  size_t block_bytes;
};

constexpr TypeInfo kTypes[] = {
    {DType::F32, "f32", 1, 4},
    {DType::F16, "f16", 1, 2},
    {DType::Q4_0, "q4_0", kQK, sizeof(BlockQ4_0)},
    {DType::Q4_1, "q4_1", kQK, sizeof(BlockQ4_1)},
    {DType::Q5_0, "q5_0", kQK, sizeof(BlockQ5_0)},
    {DType::Q5_1, "q5_1", kQK, sizeof(BlockQ5_1)},
    {DType::Q8_0, "q8_0", kQK, sizeof(BlockQ8_0)},
    {DType::Q2_K, "q2_k", kQK_K, sizeof(BlockQ2_K)},
    {DType::Q3_K, "q3_k", kQK_K, sizeof(BlockQ3_K)},
    {DType::Q4_K, "q4_k", kQK_K, sizeof(BlockQ4_K)},
    {DType::Q5_K, "q5_k", kQK_K, sizeof(BlockQ5_K)},
    {DType::Q6_K, "q6_k", kQK_K, sizeof(BlockQ6_K)},
    {DType::BF16, "bf16", 1, 2},
};

constexpr DType kAll[] = {DType::F32,  DType::F16,  DType::Q4_0, DType::Q4_1, DType::Q5_0,
                          DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K, DType::Q4_K,
                          DType::Q5_K, DType::Q6_K, DType::BF16};

const TypeInfo* info(DType t) {
  for (const TypeInfo& i : kTypes)
    if (i.type == t) return &i;
  return nullptr;
}

}  // namespace

const char* dtype_name(DType t) {
  const TypeInfo* i = info(t);
  return i ? i->name : "unknown";
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const TypeInfo& i : kTypes)
    if (name == i.name) return i.type;
  return std::nullopt;
}

std::optional<DType> dtype_from_ggml(uint32_t id) {
  for (const TypeInfo& i : kTypes)
    if (uint32_t(i.type) == id) return i.type;
  return std::nullopt;
}

std::span<const DType> dtype_all() { return kAll; }

bool dtype_is_quantized(DType t) { return dtype_block_elems(t) > 1; }

int dtype_block_elems(DType t) {
  const TypeInfo* i = info(t);
  return i ? i->block_elems : 1;
}

size_t dtype_block_bytes(DType t) {
  const TypeInfo* i = info(t);
  return i ? i->block_bytes : 0;
}

size_t dtype_row_bytes(DType t, int64_t n) {
  return size_t(n / dtype_block_elems(t)) * dtype_block_bytes(t);
}

float fp16_to_fp32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ff;
  uint32_t u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000 | (man << 13);  // inf / nan (payload kept)
  } else if (exp != 0) {
    u = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) {
    u = sign;
  } else {  // subnormal: normalize
    int e = 113;
    while (!(man & 0x400)) {
      man <<= 1;
      --e;
    }
    u = sign | (uint32_t(e) << 23) | ((man & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t fp32_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint16_t sign = uint16_t((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7fffffff;
  if (ax >= 0x7f800000) {  // inf or nan; nan stays a quiet nan
    if (ax == 0x7f800000) return sign | 0x7c00;
    return uint16_t(sign | 0x7e00 | ((ax >> 13) & 0x3ff));
  }
  if (ax >= 0x477ff000) return sign | 0x7c00;  // >= 65520 rounds to infinity
  if (ax < 0x38800000) {                       // below 2^-14: fp16 subnormal or zero
    if (ax <= 0x33000000) return sign;         // <= 2^-25 rounds to zero (tie goes to even 0)
    uint32_t e = ax >> 23;
    uint32_t m = (ax & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - e;  // 14..24
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) ++q;
    return uint16_t(sign | q);
  }
  uint32_t r = ax - (112u << 23);
  r += 0xfff + ((r >> 13) & 1);
  return uint16_t(sign | (r >> 13));
}

uint16_t fp32_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000) return uint16_t((x >> 16) | 0x40);  // quiet nan
  x += 0x7fff + ((x >> 16) & 1);
  return uint16_t(x >> 16);
}

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n) {
  const int64_t nb = n / kQK;
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * kQK;
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / ((1 << 7) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK; ++j) {
      float v = std::round(xb[j] * id);
      // Same as ggml for finite input; keeps inf/nan from reaching an undefined conversion.
      if (!(v >= -128.0f)) v = v != v ? 0.0f : -128.0f;
      if (v > 127.0f) v = 127.0f;
      y[i].qs[j] = int8_t(v);
    }
  }
}

void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t n) {
  const int64_t nb = n / kQK;
  for (int64_t i = 0; i < nb; ++i) {
    const float* xb = x + i * kQK;
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK; ++j) {
      const float v = xb[j];
      if (amax < std::fabs(v)) {
        amax = std::fabs(v);
        max = v;
      }
    }
    const float d = max / -8;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    auto q = [](float v) {
      v += 8.5f;
      if (!(v >= 0.0f)) v = 0.0f;  // nan / out of range guard (never taken for finite input)
      if (v > 15.0f) v = 15.0f;
      return uint8_t(int8_t(v));
    };
    for (int j = 0; j < kQK / 2; ++j) {
      const uint8_t x0 = q(xb[j] * id);
      const uint8_t x1 = q(xb[kQK / 2 + j] * id);
      y[i].qs[j] = uint8_t(x0 | (x1 << 4));
    }
  }
}

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, size_t(n) * 4);
      return;
    case DType::F16: {
      const uint8_t* p = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = fp16_to_fp32(h);
      }
      return;
    }
    case DType::BF16: {
      const uint8_t* p = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = bf16_to_fp32(h);
      }
      return;
    }
    case DType::Q8_0: {
      const BlockQ8_0* b = static_cast<const BlockQ8_0*>(src);
      for (int64_t i = 0; i < n / kQK; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < kQK; ++j) dst[i * kQK + j] = float(b[i].qs[j]) * d;
      }
      return;
    }
    case DType::Q4_0: {
      const BlockQ4_0* b = static_cast<const BlockQ4_0*>(src);
      for (int64_t i = 0; i < n / kQK; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < kQK / 2; ++j) {
          dst[i * kQK + j] = float(int(b[i].qs[j] & 0x0f) - 8) * d;
          dst[i * kQK + j + kQK / 2] = float(int(b[i].qs[j] >> 4) - 8) * d;
        }
      }
      return;
    }
    case DType::Q4_1:
      return dequantize_row_q4_1(static_cast<const BlockQ4_1*>(src), dst, n);
    case DType::Q5_0:
      return dequantize_row_q5_0(static_cast<const BlockQ5_0*>(src), dst, n);
    case DType::Q5_1:
      return dequantize_row_q5_1(static_cast<const BlockQ5_1*>(src), dst, n);
    case DType::Q2_K:
      return dequantize_row_q2_k(static_cast<const BlockQ2_K*>(src), dst, n);
    case DType::Q3_K:
      return dequantize_row_q3_k(static_cast<const BlockQ3_K*>(src), dst, n);
    case DType::Q4_K:
      return dequantize_row_q4_k(static_cast<const BlockQ4_K*>(src), dst, n);
    case DType::Q5_K:
      return dequantize_row_q5_k(static_cast<const BlockQ5_K*>(src), dst, n);
    case DType::Q6_K:
      return dequantize_row_q6_k(static_cast<const BlockQ6_K*>(src), dst, n);
  }
}

void quantize_row(DType t, const float* src, void* dst, int64_t n) {
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, size_t(n) * 4);
      return;
    case DType::F16: {
      uint8_t* p = static_cast<uint8_t*>(dst);
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = fp32_to_fp16(src[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      return;
    }
    case DType::BF16: {
      uint8_t* p = static_cast<uint8_t*>(dst);
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = fp32_to_bf16(src[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      return;
    }
    case DType::Q8_0:
      quantize_row_q8_0(src, static_cast<BlockQ8_0*>(dst), n);
      return;
    case DType::Q4_0:
      quantize_row_q4_0(src, static_cast<BlockQ4_0*>(dst), n);
      return;
    case DType::Q4_1:
      return quantize_row_q4_1(src, static_cast<BlockQ4_1*>(dst), n);
    case DType::Q5_0:
      return quantize_row_q5_0(src, static_cast<BlockQ5_0*>(dst), n);
    case DType::Q5_1:
      return quantize_row_q5_1(src, static_cast<BlockQ5_1*>(dst), n);
    case DType::Q2_K:
      return quantize_row_q2_k(src, static_cast<BlockQ2_K*>(dst), n);
    case DType::Q3_K:
      return quantize_row_q3_k(src, static_cast<BlockQ3_K*>(dst), n);
    case DType::Q4_K:
      return quantize_row_q4_k(src, static_cast<BlockQ4_K*>(dst), n);
    case DType::Q5_K:
      return quantize_row_q5_k(src, static_cast<BlockQ5_K*>(dst), n);
    case DType::Q6_K:
      return quantize_row_q6_k(src, static_cast<BlockQ6_K*>(dst), n);
  }
}

}  // namespace lmstream
