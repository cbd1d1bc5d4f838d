// What travels between the engine core and the executor: one step's plan in flat, self-
// contained form (no pointers into the scheduler, so it can be queued while the scheduler
// plans the next step, or serialized to other ranks by plan_codec.h), and its result — the
// sampled token ids and requested logprobs, never full logits.
#pragma once

#include <cstdint>
#include <future>
#include <optional>
#include <string>
#include <vector>

#include "engine/api/types.h"
#include "engine/model/llama.h"

namespace herd {

// What the sampler needs for one logits row (engine/sample/sampler.h SampleInput), by value.
struct SampleSpec {
  std::string request_id;  // for logs and the test logits hook
  SamplingParams params;   // `stop` strings are left out: stop checks stay in the engine core
  uint64_t seed = 0;
  uint32_t sample_index = 0;
  uint32_t num_generated = 0;       // tokens the sample has so far (RNG position, min_tokens)
  std::vector<int32_t> prompt_ids;  // only when repetition_penalty != 1 (else empty)
  std::vector<int32_t> output_ids;  // only when a penalty is on (else empty)
  // Constrained decoding (engine/grammar): bit id set = token id may be sampled; empty = all.
  // The engine core computes it from the sample's grammar state when it plans the step
  // (unless the plan carries late_masks).
  std::vector<uint64_t> allowed_tokens;
};

// One allowed-token bitset per sample row (empty = unconstrained), as in SampleSpec.
using TokenMasks = std::vector<std::vector<uint64_t>>;

struct ExecPlan {
  uint64_t id = 0;  // the scheduler's plan id: results come back in submission order
  StepInput input;
  std::vector<SampleSpec> samples;  // one per input.logits_rows entry, same order
  // Grammar masks still being computed when the plan was submitted (an executor in this
  // process only: Executor::takes_late_masks). The engine core computes them while the forward
  // runs and the sampler waits for them, so mask time hides behind the forward (XGrammar's
  // overlap). When valid, it replaces every spec's allowed_tokens; a broken promise (the
  // engine failed while computing) fails the step.
  std::shared_future<TokenMasks> late_masks;
};

struct ExecResult {
  uint64_t id = 0;
  std::vector<int32_t> tokens;  // one per sample spec
  std::vector<std::optional<TokenLogprob>> logprobs;
  // 1 where the row held a NaN or an infinity: its token is a placeholder and the engine core
  // fails that request alone.
  std::vector<uint8_t> nonfinite;
  // A reward model: the scores of every row, [rows, num_labels] row-major (tokens then hold
  // placeholders: nothing is sampled). Empty for a causal LM.
  std::vector<float> scores;
};

// The spec of one sample: copies only the token history the sampling parameters need.
SampleSpec make_sample_spec(const std::string& request_id, const SamplingParams& params,
                            uint64_t seed, uint32_t sample_index,
                            const std::vector<int32_t>& prompt, const std::vector<int32_t>& output);

}  // namespace herd
