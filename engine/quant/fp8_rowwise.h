// Row-wise FP8 weight quantization (herd quantize, --quantization fp8): one F32 scale per
// output row, scale = max|row| / 448, codes = RNE(row / scale) saturating to +-448, so that
// the dequantized row is codes * scale (the fbgemm_fp8 / Meta layout).
#pragma once

#include <cstdint>

#include "engine/common/dtype.h"

namespace herd {

// Quantizes one row of k values (any float dtype, read as fp32) into codes[0, k); returns
// its scale. An all-zero row gets scale 1 and zero codes (never a zero scale).
float quantize_weight_row_fp8(const void* row, DType dtype, int64_t k, uint8_t* codes);

// Which layers the paper keeps in BF16: the first and the last transformer layer.
bool fp8_keeps_layer(int64_t layer, int64_t num_layers, bool keep_first, bool keep_last);

}  // namespace herd
