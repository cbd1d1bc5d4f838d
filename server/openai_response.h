// OpenAI response bodies and SSE chunks, shaped as OpenAI's API sends them (field order and
// nulls included), so that the official clients parse them unchanged.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/api/engine.h"
#include "engine/api/types.h"
#include "engine/tokenizer/chat_format.h"
#include "engine/tokenizer/tokenizer.h"

namespace herd::server {

using ordered_json = nlohmann::ordered_json;

// {"error": {"message", "type", "param", "code"}}; empty param / code become null.
ordered_json error_body(const std::string& message, const std::string& type,
                        const std::string& param = "", const std::string& code = "");

// Serializes with invalid UTF-8 replaced (token bytes may split a character).
std::string to_json_text(const ordered_json& j);
// One SSE event: "data: <json>\n\n".
std::string sse_data(const ordered_json& j);
inline constexpr const char* kSseDone = "data: [DONE]\n\n";

// {"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details":
// {"cached_tokens", "audio_tokens"}, "completion_tokens_details": {"reasoning_tokens",
// "audio_tokens", "accepted_prediction_tokens", "rejected_prediction_tokens"}} as OpenAI shapes
// it (herd has no reasoning, audio or predicted outputs: those counts are 0).
ordered_json usage_json(const Usage& u);

inline constexpr const char* kHerdVersion = "0.1.0";
// OpenAI's system_fingerprint: "herd-<version>-<12 hex digits>", the digits a hash of what
// decides the tokens a seeded request gets (herd version, served model name, model shape,
// tokenizer vocabulary, context length). Stable for the life of a process and across restarts
// with the same build and model; it changes when those do.
std::string system_fingerprint(const Engine& engine, const std::string& model_name);

// Chat logprobs: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}.
ordered_json chat_logprobs_entries(const Tokenizer& tok, const std::vector<TokenLogprob>& lps,
                                   int top_n);

ordered_json tool_calls_json(const std::vector<ChatToolCall>& calls, bool with_index);

struct ChatChoiceResult {
  int index = 0;
  std::string content;
  std::vector<ChatToolCall> tool_calls;  // non-empty: content is null
  std::string finish_reason;
  std::optional<ordered_json> logprobs;  // {"content": [...]} when asked for
};

// `fingerprint`: system_fingerprint (every body and chunk carries it, as OpenAI's do).
ordered_json chat_completion_body(const std::string& id, int64_t created, const std::string& model,
                                  const std::string& fingerprint,
                                  const std::vector<ChatChoiceResult>& choices, const Usage& u);
// A chunk with one choice and the given delta (finish_reason null unless set).
ordered_json chat_chunk(const std::string& id, int64_t created, const std::string& model,
                        const std::string& fingerprint, int index, ordered_json delta,
                        const std::string& finish_reason, std::optional<ordered_json> logprobs,
                        bool usage_null);
ordered_json usage_chunk(const std::string& id, int64_t created, const std::string& model,
                         const std::string& fingerprint, const std::string& object, const Usage& u);

// Legacy /v1/completions logprobs, accumulated token by token.
class CompletionLogprobs {
 public:
  void add_prompt_token(const Tokenizer& tok, int32_t id);  // echo: logprob null
  void add(const Tokenizer& tok, const TokenLogprob& lp, int top_n);
  ordered_json json() const;
  // Entries added since the last call, as a logprobs object (streaming).
  ordered_json take_new();
  size_t text_offset() const { return offset_; }

 private:
  ordered_json tokens_ = ordered_json::array(), token_logprobs_ = ordered_json::array(),
               top_ = ordered_json::array(), offsets_ = ordered_json::array();
  size_t offset_ = 0;
  size_t taken_ = 0;
};

struct CompletionChoiceResult {
  int index = 0;
  std::string text;
  std::string finish_reason;
  std::optional<ordered_json> logprobs;
};

ordered_json completion_body(const std::string& id, int64_t created, const std::string& model,
                             const std::string& fingerprint,
                             const std::vector<CompletionChoiceResult>& choices, const Usage& u);
ordered_json completion_chunk(const std::string& id, int64_t created, const std::string& model,
                              const std::string& fingerprint, int index, const std::string& text,
                              const std::string& finish_reason,
                              std::optional<ordered_json> logprobs, bool usage_null);

// The finish_reason for an engine finish: "stop", "length", or "abort". OpenAI has no word for
// "abort", so the OpenAI routes never send it: an aborted choice ends a stream with an error
// event (aborted_error_body) and a non-streaming request with an error status. gRPC
// (proto/herd/v1/herd.proto) reports "abort" as is.
std::string openai_finish_reason(FinishReason r);

// The error event / body for a request aborted before it finished (server shutdown, an engine
// that stopped serving): type "server_error", code "request_aborted".
ordered_json aborted_error_body();
inline constexpr const char* kAbortedMessage =
    "The request was aborted before it finished (the server is shutting down or stopped "
    "serving it); the output so far is incomplete.";

}  // namespace herd::server
