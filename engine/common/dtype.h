// Element types of weights and activations, and exact scalar conversions between them.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace herd {

// kF8E4M3: OCP FP8 E4M3FN (bias 7, max 448, no infinities, NaN = S.1111.111), the weight
// type of fbgemm_fp8 checkpoints; appended last so that existing values keep their numbers.
enum class DType : uint8_t { kF32, kF16, kBF16, kI32, kF8E4M3 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF32:
      return 4;
    case DType::kF16:
      return 2;
    case DType::kBF16:
      return 2;
    case DType::kI32:
      return 4;
    case DType::kF8E4M3:
      return 1;
  }
  return 0;
}

std::string_view dtype_name(DType t);

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even, NaN kept quiet (same as torch's conversion).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// ---- FP8 E4M3FN -----------------------------------------------------------------------------
constexpr float kF8E4M3Max = 448.0f;

// Exact: every E4M3 value is an fp32 value. 0x7f / 0xff decode to NaN.
inline float f8e4m3_to_f32(uint8_t b) {
  const uint32_t sign = uint32_t(b & 0x80u) << 24;
  const uint32_t exp = (b >> 3) & 0xfu, mant = b & 0x7u;
  uint32_t u;
  if (exp == 0xfu && mant == 0x7u) {
    u = sign | 0x7fc00000u;
  } else if (exp == 0) {  // subnormal: mant * 2^-9, exact in fp32 as a normal number
    float f = float(mant) * (1.0f / 512.0f);
    std::memcpy(&u, &f, 4);
    u |= sign;
  } else {
    u = sign | ((exp + 127 - 7) << 23) | (mant << 20);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest, ties to even; magnitudes beyond 448 (infinities included) saturate to
// +-448 (the format has no infinity, and a saturated value is what fbgemm and torch's
// saturating casts produce); NaN stays NaN (0x7f with the input's sign).
inline uint8_t f32_to_f8e4m3(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint8_t sign = uint8_t((u >> 24) & 0x80u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7fu;
  if (abs >= 0x43e00000u) return sign | 0x7eu;  // >= 448: saturate
  if (abs < 0x3c800000u) {                      // < 2^-6: the subnormal grid, step 2^-9
    float a;
    std::memcpy(&a, &abs, 4);
    // a * 512 (< 8) is exact (a power of two); its integer part and remainder are exact too.
    // 8 (from 7.5 up) is code 0x08, the smallest normal: the grid continues seamlessly.
    const float scaled = a * 512.0f;
    float fl = float(int32_t(scaled));
    const float rem = scaled - fl;
    if (rem > 0.5f || (rem == 0.5f && (int32_t(fl) & 1))) fl += 1.0f;
    return sign | uint8_t(fl);
  }
  const uint32_t r = abs + 0x7ffffu + ((abs >> 20) & 1u);  // round the mantissa to 3 bits
  const uint32_t exp = (r >> 23) - 127 + 7, mant = (r >> 20) & 7u;
  if (exp > 15 || (exp == 15 && mant == 7)) return sign | 0x7eu;  // rounded past 448
  return sign | uint8_t((exp << 3) | mant);
}

}  // namespace herd
