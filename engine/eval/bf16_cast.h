// The reference of the quality report in BF16 when the checkpoint is stored in F32 (e.g. a
// converted llama2.c model such as stories260K): every tensor rounded to BF16 (RNE) into
// memory the result owns, so that "BF16 vs FP8" compares what the paper compares — the FP8
// model is then quantized from these BF16 weights and shares every other tensor with them.
#pragma once

#include "engine/model/weights.h"

namespace herd::eval {

// Whole-model F32 or F16 weights -> the same in BF16 (tied embeddings stay one tensor).
// BF16 input is returned as is. Throws herd::Error for a shard or FP8 weights.
LlamaWeights cast_llama_weights_bf16(const LlamaWeights& whole);

}  // namespace herd::eval
