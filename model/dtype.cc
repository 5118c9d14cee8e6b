// Scalar reference conversions between the weight formats of dtype.h: fp16/bf16 rounding and
// ggml's reference Q8_0/Q4_0 quantizers (bit-exact with quantize_row_*_ref).
#include "model/dtype.h"

#include <algorithm>
#include <cmath>

namespace lmstream {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "f32";
    case DType::F16:
      return "f16";
    case DType::BF16:
      return "bf16";
    case DType::Q8_0:
      return "q8_0";
    case DType::Q4_0:
      return "q4_0";
  }
  return "unknown";
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0})
    if (name == dtype_name(t)) return t;
  return std::nullopt;
}

std::optional<DType> dtype_from_ggml(uint32_t id) {
  switch (id) {
    case 0:
      return DType::F32;
    case 1:
      return DType::F16;
    case 2:
      return DType::Q4_0;
    case 8:
      return DType::Q8_0;
    case 30:
      return DType::BF16;
    default:
      return std::nullopt;
  }
}

bool dtype_is_quantized(DType t) { return t == DType::Q8_0 || t == DType::Q4_0; }

int dtype_block_elems(DType t) { return dtype_is_quantized(t) ? kQK : 1; }

size_t dtype_block_bytes(DType t) {
  switch (t) {
    case DType::F32:
      return 4;
    case DType::F16:
    case DType::BF16:
      return 2;
    case DType::Q8_0:
      return sizeof(BlockQ8_0);
    case DType::Q4_0:
      return sizeof(BlockQ4_0);
  }
  return 0;
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
  }
}

}  // namespace lmstream
