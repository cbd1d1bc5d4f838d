// `herd eval fp8` (issue 11 part 5): the quality report of row-wise FP8 against the
// unquantized model. One checkpoint is loaded once and run twice on the same backend: as
// stored (the reference, "BF16") and with its feed-forward layers quantized at load by the
// same code as `herd quantize` (first and last layers kept). On the same prompts:
//   - teacher forcing on the reference's greedy continuation: per-token KL(ref || fp8) of the
//     next-token distributions and top-1 agreement;
//   - free-running greedy continuations of both: tokens until they first differ;
//   - with a reward model: K responses per prompt from each model, sampled with the same seeds,
//     scored by the reward model (the paper's Fig. 26 compares these two distributions);
//   - the activation-cap demonstration (activation_cap.h) on the first quantized layer's
//     gate_proj with outliers of several sizes, capped at the model's ub and uncapped.
#pragma once

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kernels/backend.h"

namespace herd::eval {

struct Fp8EvalOptions {
  std::string model_dir;
  std::vector<std::string> prompts;  // text; each gets BOS when the tokenizer has one
  std::string reward_dir;            // empty: no reward scores
  int max_tokens = 32;               // greedy continuation and sampled response length
  int samples = 4;                   // responses per prompt per model (reward only)
  double temperature = 1.0;          // of the sampled responses
  uint64_t seed = 0;
  float activation_scale_ub = 1200.0f;  // 0: uncapped
  // true: an F32/F16 checkpoint is rounded to BF16 at load (bf16_cast.h) before anything else,
  // so that the reference is BF16 as in the paper; false: the reference runs as stored.
  bool reference_bf16 = false;
  // The candidate is the unquantized model too: a self-check (KL 0, 100% agreement).
  bool baseline_only = false;
  std::vector<float> cap_outliers = {2e3f, 1e4f, 1e5f};
};

// A few short story-style prompts (they suit stories260K and any Llama).
std::vector<std::string> default_eval_prompts();

struct Fp8EvalResult {
  nlohmann::ordered_json report;  // every figure, see README "herd eval fp8"
  std::vector<double> reference_scores, candidate_scores;  // reward scores (empty without)
};

// Runs the whole report; progress lines go to `log` (may be null). Throws herd::Error /
// InvalidArgument on a bad model, reward model or prompt.
Fp8EvalResult run_fp8_eval(Backend& backend, const Fp8EvalOptions& opts, FILE* log);

// The seed of prompt p's sample s (the same for both models).
uint64_t eval_sample_seed(uint64_t seed, size_t prompt, int sample);

}  // namespace herd::eval
