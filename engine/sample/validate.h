// Checks a request's SamplingParams before it is queued. Every failure throws
// herd::InvalidArgument whose param() is the OpenAI field name at fault (temperature, top_p,
// top_k, min_p, n, max_tokens, presence_penalty, frequency_penalty, repetition_penalty,
// logit_bias, stop, stop_token_ids, logprobs, prompt_logprobs, min_tokens, prompt), so the
// server can answer 400 with it.
#pragma once

#include <string_view>

#include "engine/api/types.h"

namespace herd {

// Limits the engine accepts (the same ones the server documents).
inline constexpr int kMaxSamplesPerRequest = 128;  // n
inline constexpr int kMaxStopStrings = 16;         // stop
inline constexpr int kMaxStopStringBytes = 1024;   // each stop string
inline constexpr int kMaxStopTokenIds = 1024;      // stop_token_ids
inline constexpr int kMaxTopLogprobs = 20;         // logprobs
inline constexpr float kMaxAbsLogitBias = 100.0f;  // logit_bias values

// vocab_size: the model's vocabulary (ids in logit_bias / stop_token_ids must be below it);
// prompt_len: tokens in the prompt; max_model_len: the context length the engine serves.
void validate_sampling_params(const SamplingParams& p, int vocab_size, int prompt_len,
                              int max_model_len);

// True when `s` is well-formed UTF-8 (no overlong forms, surrogates or code points above
// U+10FFFF).
bool is_valid_utf8(std::string_view s);

}  // namespace herd
