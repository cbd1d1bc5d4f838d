#include "engine/sample/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "engine/sample/logprobs.h"
#include "engine/sample/rng.h"

namespace herd {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

int32_t argmax_lowest_id(std::span<const float> logits) {
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) best = i;  // strict: ties keep the lower id
  }
  return int32_t(best);
}

}  // namespace

uint64_t effective_seed(const SamplingParams& p) { return p.seed ? *p.seed : draw_random_seed(); }

Sampler::Sampler(int vocab_size)
    : vocab_size_(vocab_size), ws_(vocab_size), weights_(size_t(vocab_size)) {}

SampleResult Sampler::sample(std::span<float> logits, const SampleInput& in) {
  if (logits.size() != size_t(vocab_size_) || in.params == nullptr) {
    throw std::invalid_argument("Sampler::sample: logits row must have vocab_size entries");
  }
  const SamplingParams& p = *in.params;
  const bool want_logprobs = p.logprobs.has_value();
  if (want_logprobs) raw_.assign(logits.begin(), logits.end());

  if (in.output_ids.size() < size_t(std::max(p.min_tokens, 0))) {
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

    // Step 5 of the header: inverse CDF in ascending id order.
    float m = kNegInf;
    const auto for_each_survivor = [&](auto&& f) {
      if (ws_.restricted) {
        for (int32_t id : ws_.kept) f(size_t(id));
      } else {
        for (size_t i = 0; i < logits.size(); ++i) {
          if (logits[i] != kNegInf) f(i);
        }
      }
    };
    for_each_survivor([&](size_t i) { m = std::max(m, logits[i]); });
    if (m == kNegInf) {
      result.token = argmax_lowest_id(logits);  // every token masked: degenerate, stay defined
    } else {
      double total = 0.0;
      for_each_survivor([&](size_t i) {
        weights_[i] = std::exp(logits[i] - m);
        total += double(weights_[i]);
      });
      const double target =
          sampling_uniform(in.seed, in.sample_index, uint32_t(in.output_ids.size())) * total;
      double running = 0.0;
      int64_t chosen = -1, last_positive = -1;
      for_each_survivor([&](size_t i) {
        if (chosen >= 0) return;
        if (weights_[i] > 0.0f) last_positive = int64_t(i);
        running += double(weights_[i]);
        if (running > target) chosen = int64_t(i);
      });
      result.token = int32_t(chosen >= 0 ? chosen : last_positive);
    }
  }
  if (want_logprobs) result.logprob = compute_logprobs(raw_, result.token, *p.logprobs);
  return result;
}

}  // namespace herd
