// Per-target helpers shared by the Highway kernels: load a vector's worth of weights of any
// storage type (float, bf16 bits, f16 bits) as fp32 lanes. Included once per target from
// inside each kernel file (Highway's foreach_target re-includes it), hence the toggle guard.
#if defined(HERD_KERNELS_CPU_LOAD_WIDEN_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef HERD_KERNELS_CPU_LOAD_WIDEN_INL_H_
#undef HERD_KERNELS_CPU_LOAD_WIDEN_INL_H_
#else
#define HERD_KERNELS_CPU_LOAD_WIDEN_INL_H_
#endif

#include <cstring>
#include <type_traits>

#include "engine/common/dtype.h"
#include "hwy/highway.h"
#include "kernels/cpu/fp8_activation.h"

HWY_BEFORE_NAMESPACE();
namespace herd::cpu::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Storage tags: the weight pointers arrive as raw bits (uint16_t) and are reinterpreted here.
struct F32W {
  using T = float;
};
struct BF16W {
  using T = hwy::bfloat16_t;
};
struct F16W {
  using T = hwy::float16_t;
};
// FP8 E4M3 bytes. Loaded as the code's value / 256 (see LoadWidened): the caller scales the
// finished dot products by 256, which is exact.
struct F8W {
  using T = uint8_t;
};

// Highway 1.0.3 widens f16 without F16C (SSSE3, SSE4, EMU128, SCALAR) by arithmetic that
// turns inf into 65536 and NaN into a finite number; this exact version replaces it there.
#if (HWY_ARCH_X86 && HWY_TARGET >= HWY_SSE4) || HWY_TARGET == HWY_EMU128 || HWY_TARGET == HWY_SCALAR
#define HERD_SOFT_F16_WIDEN 1
#else
#define HERD_SOFT_F16_WIDEN 0
#endif

#if HERD_SOFT_F16_WIDEN
// Exponent/mantissa shifted into fp32 position and scaled by 2^112 (exact for normals and
// subnormals); exponent 31 (inf/NaN) maps to exponent 255; the sign is OR-ed back last.
template <class DF>
HWY_INLINE hn::Vec<DF> WidenF16Bits(DF df, hn::Vec<hn::RebindToUnsigned<DF>> bits) {
  const hn::RebindToUnsigned<DF> du;
  const hn::RebindToSigned<DF> di;
  const auto magnitude = hn::And(bits, hn::Set(du, 0x7fffu));
  const auto shifted = hn::ShiftLeft<13>(magnitude);
  const auto finite = hn::Mul(hn::BitCast(df, shifted), hn::BitCast(df, hn::Set(du, 0x77800000u)));
  const auto special = hn::BitCast(df, hn::Or(shifted, hn::Set(du, 0x7f800000u)));
  const auto is_special = hn::RebindMask(  // signed compare: unsigned Ge is missing on SSE4
      df, hn::Gt(hn::BitCast(di, magnitude), hn::Set(di, 0x7bff)));
  const auto sign = hn::ShiftLeft<16>(hn::And(bits, hn::Set(du, 0x8000u)));
  return hn::Or(hn::IfThenElse(is_special, special, finite), hn::BitCast(df, sign));
}
#endif

// Lanes(df) fp32 values from p[0..Lanes). bf16/f16 load half as many bytes and widen in
// registers (bf16: a 16-bit shift; f16: the F16C conversion where the target has it).
template <class W, class DF>
HWY_INLINE hn::Vec<DF> LoadWidened(DF df, const typename W::T* HWY_RESTRICT p) {
  if constexpr (std::is_same_v<W, F32W>) {
    return hn::LoadU(df, p);
  } else if constexpr (std::is_same_v<W, F8W>) {
    // E4M3 S.EEEE.MMM sign-extended to 16 bits and shifted left 7 lands E in the low four
    // bits of f16's exponent and M on top of its mantissa: the f16 S.0EEEE.MMM0000000 is the
    // E4M3 value times 2^-8 (bias 15 vs 7), subnormals included (f16 subnormals convert
    // exactly). Bit 14 (a copy of the sign) is cleared. NaN codes become finite (480 / 256):
    // weights are never NaN (the quantizer never writes it).
    const hn::Rebind<int8_t, DF> d8;
    const hn::Rebind<int16_t, DF> d16;
    const auto wide =
        hn::ShiftLeft<7>(hn::PromoteTo(d16, hn::LoadU(d8, reinterpret_cast<const int8_t*>(p))));
    const auto bits = hn::And(wide, hn::Set(d16, int16_t(0xbfff)));
#if HERD_SOFT_F16_WIDEN
    const hn::RebindToUnsigned<DF> du;
    const hn::Rebind<uint16_t, DF> du16;
    return WidenF16Bits(df, hn::PromoteTo(du, hn::BitCast(du16, bits)));
#else
    const hn::Rebind<hwy::float16_t, DF> dh;
    return hn::PromoteTo(df, hn::BitCast(dh, bits));
#endif
  } else {
#if HERD_SOFT_F16_WIDEN
    if constexpr (std::is_same_v<W, F16W>) {
      const hn::RebindToUnsigned<DF> du;
      const hn::Rebind<uint16_t, DF> du16;
      const auto bits = hn::LoadU(du16, reinterpret_cast<const uint16_t*>(p));
      return WidenF16Bits(df, hn::PromoteTo(du, bits));
    }
#endif
    const hn::Rebind<typename W::T, DF> dh;
    return hn::PromoteTo(df, hn::LoadU(dh, p));
  }
}

// One scalar element as fp32 (vector tails).
template <class W>
HWY_INLINE float LoadScalar(const typename W::T* p) {
  if constexpr (std::is_same_v<W, F32W>) {
    return *p;
  } else if constexpr (std::is_same_v<W, F8W>) {
    return f8_widen_table()[*p];
  } else {
    uint16_t bits;
    std::memcpy(&bits, p, 2);
    return std::is_same_v<W, BF16W> ? bf16_to_f32(bits) : f16_to_f32(bits);
  }
}

}  // namespace herd::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#undef HERD_SOFT_F16_WIDEN
#endif  // include guard toggle
