// What the activation scale cap (activation_scale_ub, 1200 in Meta's FP8 checkpoints; paper
// §6.2) does to one activation row with a huge value in it, measured through the backend's
// real FP8 linear(). The row: ordinary values drawn from N(0, 1) (RMSNormed hidden states are
// of that order) with element 0 replaced by `outlier`.
//   - Uncapped, the token's scale is outlier / 448, and every ordinary value below half the
//     smallest E4M3 subnormal times that scale rounds to zero (the rest keep few bits).
//   - Capped at ub, the scale is ub / 448: the ordinary values keep their precision and the
//     outlier saturates at +-ub.
// Two output errors are reported against the exact product of the same FP8 weight with the
// unquantized row: over all inputs ("full": dominated by the outlier's channel, where the cap
// itself is the error), and over the ordinary channels only ("ordinary": the weight's
// outlier column zeroed), which is what the cap protects.
#pragma once

#include <cstdint>

#include "kernels/backend.h"

namespace herd::eval {

struct CapRun {
  float ub = 0;                   // 0: uncapped
  float scale = 0;                // the token's activation scale
  double ordinary_underflow = 0;  // fraction of ordinary (nonzero) inputs quantized to 0
  double outlier_quantized = 0;   // the outlier after quantize + dequantize
  double ordinary_rel_error = 0;  // ||y - y_exact|| / ||y_exact|| over the ordinary channels
  double full_rel_error = 0;      // the same with the outlier's channel included
};

struct CapDemo {
  int64_t k = 0;      // row length (the weight's input features)
  float outlier = 0;  // the huge value
  CapRun capped, uncapped;
};

// `w`: an F8E4M3 weight [out, k] with its F32 row scales, in host memory (the CPU backend
// reads it in place). Throws herd::Error when it is not FP8.
CapDemo demonstrate_activation_cap(Backend& backend, const Tensor& w, const Tensor& row_scale,
                                   float outlier, float ub, uint64_t seed = 1);

}  // namespace herd::eval
