#include "engine/quant/fp8_rowwise.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace herd {

namespace {
float load(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::kBF16:
      return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::kF16:
      return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::kF8E4M3:
      return f8e4m3_to_f32(static_cast<const uint8_t*>(p)[i]);
    case DType::kI32:
      return float(static_cast<const int32_t*>(p)[i]);
    case DType::kF32:
      break;
  }
  return static_cast<const float*>(p)[i];
}
}  // namespace

float quantize_weight_row_fp8(const void* row, DType dtype, int64_t k, uint8_t* codes) {
  std::vector<float> v(static_cast<size_t>(k));
  float amax = 0.0f;
  for (int64_t i = 0; i < k; ++i) {
    v[size_t(i)] = load(row, dtype, i);
    amax = std::max(amax, std::fabs(v[size_t(i)]));
  }
  const float s = amax > 0.0f ? amax / kF8E4M3Max : 1.0f;
  for (int64_t i = 0; i < k; ++i) codes[i] = f32_to_f8e4m3(v[size_t(i)] / s);
  return s;
}

bool fp8_keeps_layer(int64_t layer, int64_t num_layers, bool keep_first, bool keep_last) {
  return (keep_first && layer == 0) || (keep_last && layer == num_layers - 1);
}

}  // namespace herd
