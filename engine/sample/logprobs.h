// Logprobs as returned to clients: computed from the model's RAW logits, i.e. log_softmax of
// the row before logit_bias, penalties, temperature or any top-k/top-p/min-p mask (vLLM's
// default logprobs_mode "raw_logprobs"; OpenAI reports the model's distribution too).
#pragma once

#include <cstdint>
#include <span>

#include "engine/api/types.h"

namespace herd {

// logprob(id) = float(l[id] - (m + log(Z))) in fp64, m = max l, Z = sum_j sampler_exp(l[j] - m)
// summed as row_math.h exp_weights() does.
// Returns the chosen token's logprob and the top_n best tokens (logprob descending, ties to
// the lower id); top_n = 0 gives an empty `top`. O(vocab * log(top_n)) without allocation
// beyond the result.
TokenLogprob compute_logprobs(std::span<const float> raw_logits, int32_t chosen, int top_n);

}  // namespace herd
