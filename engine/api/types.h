// The request/response vocabulary shared by the engine and its clients (server, jobs, CLI).
// Plain data: no behaviour lives here. Validation of SamplingParams is in engine/sample.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace herd {

// Constrained decoding (engine/grammar): the output must be JSON of this kind. Tool calls are
// forced the same way, with a schema the server builds from the tool definitions.
struct ResponseFormat {
  enum class Type { kText, kJsonObject, kJsonSchema };
  Type type = Type::kText;
  std::string schema;  // kJsonSchema: the JSON Schema, as JSON text
  // The request field the schema came from, named by errors (e.g. "tools" for tool calls).
  std::string param = "response_format";
};

struct SamplingParams {
  int n = 1;                        // samples of this prompt; they share its KV pages
  double temperature = 1.0;         // 0 = greedy
  double top_p = 1.0;               // (0, 1]
  int top_k = -1;                   // -1 or 0 = off
  double min_p = 0.0;               // [0, 1]
  double presence_penalty = 0.0;    // [-2, 2]
  double frequency_penalty = 0.0;   // [-2, 2]
  double repetition_penalty = 1.0;  // > 0; 1 = off
  std::vector<std::pair<int32_t, float>> logit_bias;
  std::optional<uint64_t> seed;   // same seed + same prompt -> same tokens, whatever the batch
  std::optional<int> logprobs;    // number of top logprobs per token (0 = only the chosen one)
  int prompt_logprobs = -1;       // reserved (not yet supported: must stay -1)
  std::vector<std::string> stop;  // stop strings: matched across tokens, never emitted
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  std::optional<int> max_tokens;  // unset: up to max_model_len
  int min_tokens = 0;
  bool skip_special_tokens = true;
  ResponseFormat response_format;  // kText: unconstrained
};

// The priority of background batch requests (/v1/batches, herd batch, herd rs): behind
// interactive ones (0) in the scheduler's admission and budget order.
inline constexpr int kBatchPriority = 100;

struct Request {
  std::string id;                   // unique among live requests
  std::vector<int32_t> prompt_ids;  // already tokenized (BOS included if wanted)
  SamplingParams params;
  int priority = 0;        // lower runs first (ties: arrival order)
  std::string cache_salt;  // isolates prefix-cache entries (e.g. per tenant)
};

enum class FinishReason { kNone, kStop, kLength, kAbort };
const char* finish_reason_name(FinishReason r);  // "stop" | "length" | "abort" | ""

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top;  // top-k alternatives, best first
};

struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;  // summed over all n samples in the final delta of the request
  int cached_prompt_tokens = 0;
};

// One streamed delta of one sample (index < n). The last delta of a sample carries its
// finish_reason; the last delta of the whole request also has request_finished set and usage.
struct Output {
  std::string request_id;
  int index = 0;
  std::string text;                // newly completed UTF-8 text (never a partial character)
  std::vector<int32_t> token_ids;  // new tokens
  std::vector<TokenLogprob> logprobs;
  FinishReason finish_reason = FinishReason::kNone;
  std::string stop_reason;  // the stop string or token that ended it, if any
  bool request_finished = false;
  Usage usage;
  // Non-empty when the engine failed the request (with finish_reason kAbort): a NaN or
  // infinite logit in this request's row (only this request ends; the rest of the batch goes
  // on), a failed step (the engine is then unhealthy, see Engine::health), or shutdown.
  // Clients answer it as an error (the server: an error event / HTTP 500), never as success.
  std::string error;
  // A reward model's engine (ModelConfig::is_reward_model): every request is a score request,
  // prefill-only; its one delta (finish_reason stop, request_finished) carries the scores —
  // the sequence-classification head on the last prompt token, one per label. Empty otherwise.
  std::vector<float> scores;
};

}  // namespace herd
