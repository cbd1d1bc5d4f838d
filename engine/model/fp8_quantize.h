// Row-wise FP8 quantization of a Llama checkpoint's feed-forward layers (issue 11, paper
// §6.2): gate/up/down of every layer except the first and the last become F8_E4M3 with one
// F32 scale per output row (scale = max|row| / 448, RNE, saturating); attention, norms,
// embeddings and the LM head stay as they are. One code path serves both uses:
//   - `herd quantize --fp8-rowwise` writes Meta's fbgemm_fp8 layout (quantize_checkpoint_fp8);
//   - `--quantization fp8` quantizes at load (quantize_llama_weights_fp8), giving exactly the
//     weights that loading the written checkpoint would give.
#pragma once

#include <string>
#include <vector>

#include "engine/model/config.h"
#include "engine/model/weights.h"
#include "engine/quant/fp8_config.h"

namespace herd {

struct Fp8QuantizeOptions {
  float activation_scale_ub = kDefaultActivationScaleUb;
  bool keep_first = true;  // the paper keeps the first and the last transformer layer in BF16
  bool keep_last = true;
};

// The layers whose feed-forward projections get quantized.
std::vector<int64_t> fp8_quantized_layers(const ModelConfig& c, const Fp8QuantizeOptions& o);

// The quantization_config a quantized checkpoint declares: modules_to_not_convert lists every
// attention projection, the kept layers' mlp projections and lm_head (as Meta's do).
Fp8QuantConfig fp8_quant_config_for(const ModelConfig& c, const Fp8QuantizeOptions& o);

// Whole-model weights (any float dtype, no FP8 yet) -> the same with FP8 feed-forward
// weights in the quantized layers. The new tensors live in memory owned by the result's
// storage (which keeps `whole`'s mapping alive too). Throws herd::Error when `whole` is a
// shard or already quantized.
LlamaWeights quantize_llama_weights_fp8(const LlamaWeights& whole, const ModelConfig& c,
                                        const Fp8QuantizeOptions& o);

// load_llama_weights, then with quantization "fp8" the feed-forward layers quantized at load
// (default options: first/last layers kept, cap 1200) before the rank's part is sliced, so
// every rank holds exactly the scales of the whole-model quantization. "" / "none": as
// stored. Anything else: herd::InvalidArgument (param "quantization").
LlamaWeights load_llama_weights_quantized(const std::string& dir, const ModelConfig& c,
                                          const RankLayout& layout,
                                          const std::string& quantization);

// herd quantize: reads the checkpoint in `input` (BF16/F16/F32, not already quantized) and
// writes `output`: every tensor byte-identical except the quantized mlp weights (F8_E4M3
// `weight` + F32 `weight_scale` [out, 1]), config.json with quantization_config, and every
// other file (tokenizer, generation config) copied. Throws herd::Error naming the file.
void quantize_checkpoint_fp8(const std::string& input, const std::string& output,
                             const Fp8QuantizeOptions& o);

}  // namespace herd
