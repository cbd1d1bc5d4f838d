// OpenAI response bodies and SSE chunks, shaped as OpenAI's API sends them (field order and
// nulls included), so that the official clients parse them unchanged.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

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

ordered_json usage_json(const Usage& u);

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

ordered_json chat_completion_body(const std::string& id, int64_t created, const std::string& model,
                                  const std::vector<ChatChoiceResult>& choices, const Usage& u);
// A chunk with one choice and the given delta (finish_reason null unless set).
ordered_json chat_chunk(const std::string& id, int64_t created, const std::string& model, int index,
                        ordered_json delta, const std::string& finish_reason,
                        std::optional<ordered_json> logprobs, bool usage_null);
ordered_json usage_chunk(const std::string& id, int64_t created, const std::string& model,
                         const std::string& object, const Usage& u);

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
                             const std::vector<CompletionChoiceResult>& choices, const Usage& u);
ordered_json completion_chunk(const std::string& id, int64_t created, const std::string& model,
                              int index, const std::string& text, const std::string& finish_reason,
                              std::optional<ordered_json> logprobs, bool usage_null);

// The OpenAI finish_reason for an engine finish ("abort" is reported as OpenAI has no word for
// it; clients see it only for engine failures and shutdown).
std::string openai_finish_reason(FinishReason r);

}  // namespace herd::server
