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

// Lanes(df) fp32 values from p[0..Lanes). bf16/f16 load half as many bytes and widen in
// registers (bf16: a 16-bit shift; f16: the F16C conversion where the target has it).
template <class W, class DF>
HWY_INLINE hn::Vec<DF> LoadWidened(DF df, const typename W::T* HWY_RESTRICT p) {
  if constexpr (std::is_same_v<W, F32W>) {
    return hn::LoadU(df, p);
  } else {
    const hn::Rebind<typename W::T, DF> dh;
    return hn::PromoteTo(df, hn::LoadU(dh, p));
  }
}

// One scalar element as fp32 (vector tails).
template <class W>
HWY_INLINE float LoadScalar(const typename W::T* p) {
  if constexpr (std::is_same_v<W, F32W>) {
    return *p;
  } else {
    uint16_t bits;
    std::memcpy(&bits, p, 2);
    return std::is_same_v<W, BF16W> ? bf16_to_f32(bits) : f16_to_f32(bits);
  }
}

}  // namespace herd::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard toggle
