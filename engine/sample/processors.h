// Logits processors: each edits one sequence's fp32 logits row [vocab] in place on the host.
// A masked token gets -inf. The Sampler applies them in vLLM's order (vllm/v1/sample/sampler.py):
//   1. min_tokens mask (eos + stop_token_ids -> -inf while fewer than min_tokens were generated)
//   2. logit_bias                 l[id] += bias
//   3. repetition penalty         over prompt + output tokens (Hugging Face semantics)
//   4. frequency penalty          l -= frequency * count(id in output)      (OpenAI semantics)
//   5. presence penalty           l -= presence * (id occurs in output)
//   -- greedy (temperature < kGreedyTemperature) takes the argmax here --
//   6. temperature                l /= temperature
//   7. min_p                      drop tokens with p < min_p * p_max
//   8. top_k, then top_p          (one partial selection serves both)
// Arithmetic is fp32 per element exactly as written in each function's comment (exp is
// row_math.h's sampler_exp), so a device implementation can match it bit for bit; sums that
// decide a cut-off are fp64 in a documented order.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "engine/sample/row_math.h"

namespace herd {

// Below this temperature sampling is greedy (dividing by it would overflow); vLLM uses 1e-5.
inline constexpr double kGreedyTemperature = 1e-5;

// Scratch memory reused across calls so that a step allocates nothing. Sized to the vocab once;
// one per sampling thread (not thread-safe).
struct SamplerWorkspace {
  explicit SamplerWorkspace(int vocab_size);
  std::vector<int32_t> output_count;  // all zero between calls
  std::vector<uint8_t> seen;          // all zero between calls
  std::vector<int32_t> touched;       // ids whose output_count / seen were set by this call
  std::vector<std::pair<float, int32_t>> candidates;  // (logit, id) for top-k / top-p
  std::vector<float> weights;      // [vocab] exp weights (row_math.h exp_weights)
  std::vector<double> block_sums;  // [ceil(vocab / kSumBlock)]
  // Set by apply_top_k_top_p: when `restricted`, `survivors` lists the ids still finite, in
  // ascending order, so that later steps can skip the masked rest of the row.
  bool restricted = false;
  std::vector<int32_t> survivors;
};

// l[id] = -inf for every id listed (ids outside the row are ignored).
void mask_tokens(std::span<float> logits, std::span<const int32_t> ids);

// l[id] = -inf for every id whose bit in `allowed` (bit id % 64 of word id / 64) is clear;
// ids beyond the bitset are masked too.
void apply_allowed_tokens(std::span<float> logits, std::span<const uint64_t> allowed);

// l[id] = l[id] + bias (fp32 add). Duplicate ids add up.
void apply_logit_bias(std::span<float> logits, const std::vector<std::pair<int32_t, float>>& bias);

struct Penalties {
  float repetition = 1.0f;  // > 0; 1 = off
  float frequency = 0.0f;   // [-2, 2]
  float presence = 0.0f;    // [-2, 2]
  bool active() const { return repetition != 1.0f || frequency != 0.0f || presence != 0.0f; }
};

// For each distinct id in prompt ∪ output: l = l > 0 ? l / repetition : l * repetition.
// Then for each distinct id in output with count c: l = l - frequency * float(c), and then
// l = l - presence. O(prompt + output), not O(vocab).
void apply_penalties(std::span<float> logits, std::span<const int32_t> prompt_ids,
                     std::span<const int32_t> output_ids, const Penalties& pen,
                     SamplerWorkspace& ws);

// l = l / temperature (fp32 division), temperature >= kGreedyTemperature.
void apply_temperature(std::span<float> logits, float temperature);

// With m = max finite logit: keep id iff sampler_exp(l - m) >= min_p, i.e. p >= min_p * p_max
// (row_math.h). The argmax always survives. min_p <= 0 is a no-op.
void apply_min_p(std::span<float> logits, float min_p);

// Candidates are the finite logits ranked by (logit descending, id ascending): ties break to
// the lower id, so the kept set is exact and deterministic.
//  - top_k > 0: keep the first top_k candidates (exactly top_k, even when the k-th ties).
//  - top_p < 1: over the candidates left by top_k, with m their max logit, weights
//    w = sampler_exp(l - m) and W their total as row_math.h exp_weights() sums it (fp64,
//    blocked), keep the shortest ranked prefix whose running fp64 sum of w, added one by one
//    in rank order, reaches top_p * W (at least one token).
// Everything else becomes -inf (and ws.restricted / ws.survivors say which remain). Cost: O(vocab)
// plus a selection: top_k keeps a k-heap; top_p ranks only tokens with w >= 2^-20 first (a ranked
// prefix, so exact) and widens to all candidates only when their mass falls short, sorting a
// geometrically growing prefix.
void apply_top_k_top_p(std::span<float> logits, int top_k, float top_p, SamplerWorkspace& ws);

}  // namespace herd
