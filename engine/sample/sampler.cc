#include "engine/sample/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "engine/sample/logprobs.h"
#include "engine/sample/rng.h"
#include "engine/sample/row_math.h"

namespace herd {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

int32_t argmax_lowest_id(std::span<const float> logits) {
  const float m = row_max(logits);
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] == m) return int32_t(i);  // the first maximum: ties go to the lowest id
  }
  return 0;  // NaN row
}

}  // namespace

// Step 5 of the header. When top-k/top-p left a short survivor list, only those ids are
// visited: every other weight is +0, which changes no sum and is never chosen, so the token is
// the same as the full-row walk gives.
int32_t Sampler::inverse_cdf(std::span<const float> logits, double u) {
  const float m = row_max(logits);
  if (m == kNegInf) return argmax_lowest_id(logits);  // every token masked: stay defined
  const float* w = ws_.weights.data();
  const double* block_sums = ws_.block_sums.data();
  const bool sparse = ws_.restricted;
  const double total = sparse ? exp_weights_sparse(logits, ws_.survivors, m, ws_.weights.data(),
                                                   ws_.block_sums.data())
                              : exp_weights(logits, m, ws_.weights.data(), ws_.block_sums.data());
  const double target = u * total;
  // Walks ids [begin, end) of block b (sparse: survivors[begin, end)).
  const auto id_at = [&](size_t k) { return sparse ? size_t(ws_.survivors[k]) : k; };
  const size_t count = sparse ? ws_.survivors.size() : logits.size();
  double running = 0.0;
  for (size_t begin = 0; begin < count;) {
    size_t b, end;
    if (sparse) {
      b = id_at(begin) / kSumBlock;
      for (end = begin; end < count && id_at(end) / kSumBlock == b;) ++end;
    } else {
      b = begin / kSumBlock;
      end = std::min(count, begin + kSumBlock);
    }
    const double before = running;
    running += block_sums[b];
    if (running > target) {
      // The token is in this block: add its weights one by one on top of the blocks before.
      double r = before;
      int64_t last_positive = -1;
      for (size_t k = begin; k < end; ++k) {
        const size_t i = id_at(k);
        if (w[i] > 0.0f) last_positive = int64_t(i);
        r += double(w[i]);
        if (r > target) return int32_t(i);
      }
      if (last_positive >= 0) return int32_t(last_positive);
    }
    begin = end;
  }
  // Rounding left u * W at or past the total: the last token with weight.
  for (size_t k = count; k-- > 0;) {
    if (w[id_at(k)] > 0.0f) return int32_t(id_at(k));
  }
  return argmax_lowest_id(logits);
}

uint64_t effective_seed(const SamplingParams& p) { return p.seed ? *p.seed : draw_random_seed(); }

Sampler::Sampler(int vocab_size) : vocab_size_(vocab_size), ws_(vocab_size) {}

SampleResult Sampler::sample(std::span<float> logits, const SampleInput& in) {
  if (logits.size() != size_t(vocab_size_) || in.params == nullptr) {
    throw std::invalid_argument("Sampler::sample: logits row must have vocab_size entries");
  }
  const SamplingParams& p = *in.params;
  const bool want_logprobs = p.logprobs.has_value();
  if (want_logprobs) raw_.assign(logits.begin(), logits.end());

  if (!in.allowed_tokens.empty()) apply_allowed_tokens(logits, in.allowed_tokens);
  if (in.num_generated < uint32_t(std::max(p.min_tokens, 0))) {
    if (!p.ignore_eos) mask_tokens(logits, in.eos_ids);
    mask_tokens(logits, p.stop_token_ids);
  }
  apply_logit_bias(logits, p.logit_bias);
  apply_penalties(
      logits, in.prompt_ids, in.output_ids,
      Penalties{float(p.repetition_penalty), float(p.frequency_penalty), float(p.presence_penalty)},
      ws_);

  SampleResult result;
  if (p.temperature < kGreedyTemperature) {
    result.token = argmax_lowest_id(logits);
  } else {
    apply_temperature(logits, float(p.temperature));
    apply_min_p(logits, float(p.min_p));
    apply_top_k_top_p(logits, p.top_k, float(p.top_p), ws_);

    result.token = inverse_cdf(
        logits, sampling_uniform(in.seed, in.sample_index, in.num_generated));
  }
  if (want_logprobs) result.logprob = compute_logprobs(raw_, result.token, *p.logprobs);
  return result;
}

}  // namespace herd
