// The host sampler: one sequence's logits row in, one token (and its logprobs) out.
//
// Exact algorithm (a device sampler must follow it to give the same tokens):
//  1. If logprobs were asked for, they are computed from the raw row first (logprobs.h).
//  2. Processors 1-5 of processors.h (min_tokens mask, logit_bias, penalties).
//  3. temperature < kGreedyTemperature: the token is the argmax, ties to the lowest id. Done.
//  4. Processors 6-8 (temperature, min_p, top_k + top_p).
//  5. Inverse CDF over the surviving tokens in ASCENDING TOKEN ID order: with m = the max
//     surviving logit, w[i] = expf(l[i] - m) (fp32), W = sum of w in id order (fp64),
//     u = sampling_uniform(seed, sample_index, position) (rng.h), position = number of tokens
//     the sample has generated so far. The token is the first id whose fp64 running sum of w
//     is > u * W; should rounding leave none, the last id with w > 0.
// Id order needs no sort of the full vocab, and a device can compute the same running sums
// with an fp64 prefix scan.
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
  int vocab_size_;
  SamplerWorkspace ws_;
  std::vector<float> raw_;      // copy of the raw row when logprobs are requested
  std::vector<float> weights_;  // w[i] of step 5
};

// The seed a request samples with: its own, or a fresh random one (call once per request).
uint64_t effective_seed(const SamplingParams& p);

}  // namespace herd
