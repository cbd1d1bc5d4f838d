// The host sampler: one sequence's logits row in, one token (and its logprobs) out.
//
// Exact algorithm (a device sampler must follow it to give the same tokens):
//  1. If logprobs were asked for, they are computed from the raw row first (logprobs.h).
//     Then tokens outside SampleInput::allowed_tokens (a grammar's mask) become -inf, so
//     every later step (and greedy) works within the allowed set.
//  2. Processors 1-5 of processors.h (min_tokens mask, logit_bias, penalties).
//  3. temperature < kGreedyTemperature: the token is the argmax, ties to the lowest id. Done.
//  4. Processors 6-8 (temperature, min_p, top_k + top_p).
//  5. Inverse CDF over the whole row in ASCENDING TOKEN ID order, masked tokens weighing 0:
//     m = the max logit, w[i] = sampler_exp(l[i] - m) (row_math.h), the ids cut into blocks
//     of kSumBlock with fp64 block sums S[b] = lane_sum(w of block b) and W = S[0] + S[1] + ...
//     (in block order, fp64), u = sampling_uniform(seed, sample_index, position) (rng.h) where
//     position = num_generated (the tokens the sample has generated so far), target = u * W.
//     The block is the first b with S[0] + ... + S[b] > target (running fp64 sum); inside it,
//     starting from S[0] + ... + S[b-1], add w[i] (fp64) id by id: the token is the first id
//     where the sum exceeds target; if rounding leaves none, the block's last id with w > 0
//     (and if no block qualifies, the row's last id with w > 0).
// No sort of the vocab is needed, and every sum has a fixed order, so a device sampler
// (per-block reductions, then a scan over blocks) reproduces the token exactly.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "engine/api/types.h"
#include "engine/sample/processors.h"

namespace herd {

// What the sampler needs to know about one sample of a request at this step.
struct SampleInput {
  const SamplingParams* params = nullptr;
  uint64_t seed = 0;                    // the request's seed, or one drawn when it was added
  uint32_t sample_index = 0;            // which of the request's n samples
  std::span<const int32_t> prompt_ids;  // for the repetition penalty
  std::span<const int32_t> output_ids;  // this sample's tokens so far
  std::span<const int32_t> eos_ids;     // the model's eos ids (for the min_tokens mask)
  // Tokens the sample has generated so far: the RNG position and the min_tokens count.
  // output_ids may be left empty when no penalty reads it (exec_plan.h copies it only then).
  uint32_t num_generated = 0;
  // Constrained decoding: a bitset over token ids (bit id % 64 of word id / 64); tokens whose
  // bit is clear are masked before anything else. Empty: every token may be sampled.
  std::span<const uint64_t> allowed_tokens;
};

struct SampleResult {
  int32_t token = 0;
  std::optional<TokenLogprob> logprob;  // set when params->logprobs is set
};

// Holds the scratch memory for one sampling thread; reuse it across steps and sequences.
class Sampler {
 public:
  explicit Sampler(int vocab_size);
  // `logits` (length vocab_size) is used as scratch and left processed.
  SampleResult sample(std::span<float> logits, const SampleInput& in);

 private:
  int32_t inverse_cdf(std::span<const float> logits, double u);

  int vocab_size_;
  SamplerWorkspace ws_;
  std::vector<float> raw_;  // copy of the raw row when logprobs are requested
};

// The seed a request samples with: its own, or a fresh random one (call once per request).
uint64_t effective_seed(const SamplingParams& p);

}  // namespace herd
