// OpenAI request bodies -> engine vocabulary. Unknown fields are ignored; null means "not set";
// a field of the wrong type or out of range throws herd::InvalidArgument naming the field
// (OpenAI's error.param), which the HTTP layer answers with 400. Ranges that the engine
// validates (engine/sample/validate.h) are left to it, except where the OpenAI API is
// narrower than the engine.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/api/types.h"
#include "engine/tokenizer/chat_format.h"

namespace herd::server {

// Request limits the parsers enforce (the engine's own are in engine/sample/validate.h: n,
// stop strings, stop_token_ids, logprobs; the JSON depth limit is in server/untrusted_json.h).
// Each failure is a 400 naming the param and the limit.
inline constexpr size_t kMaxChatMessages = 4096;            // messages
inline constexpr size_t kMaxTools = 128;                    // tools (OpenAI's own limit)
inline constexpr size_t kMaxToolsPromptBytes = 512 * 1024;  // tools as rendered in the prompt
inline constexpr size_t kMaxCacheSaltBytes = 256;           // cache_salt
inline constexpr size_t kMaxCompletionPrompts = 128;        // /v1/completions prompt list

struct ChatCompletionRequest {
  std::string model;  // empty when not given
  std::vector<ChatMessage> messages;
  nlohmann::json tools = nlohmann::json::array();  // what the prompt offers (after tool_choice)
  bool parse_tool_calls = false;                   // tools offered: look for calls in the reply
  bool add_generation_prompt = true;
  SamplingParams params;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool logprobs = false;
  int top_logprobs = 0;
  std::string cache_salt;  // empty: the server's own prefix-cache salt only
};

struct PromptInput {
  bool is_text = true;
  std::string text;          // is_text
  std::vector<int32_t> ids;  // !is_text
};

struct CompletionRequest {
  std::string model;
  std::vector<PromptInput> prompts;  // one engine request each
  SamplingParams params;
  bool stream = false;
  bool include_usage = false;
  bool echo = false;
  std::optional<int> logprobs;     // legacy: number of top alternatives (0..20)
  bool add_special_tokens = true;  // BOS before text prompts (vLLM's extra field)
  std::string cache_salt;
};

struct TokenizeRequest {
  bool is_chat = false;
  std::string prompt;                 // !is_chat
  std::vector<ChatMessage> messages;  // is_chat
  nlohmann::json tools = nlohmann::json::array();
  bool add_generation_prompt = true;
  bool add_special_tokens = true;
  bool return_token_strs = false;
};

ChatCompletionRequest parse_chat_request(const nlohmann::json& body);
CompletionRequest parse_completion_request(const nlohmann::json& body);
TokenizeRequest parse_tokenize_request(const nlohmann::json& body);
std::vector<int32_t> parse_detokenize_request(const nlohmann::json& body);

// The chat `messages` array -> ChatMessage list (content strings or text parts).
std::vector<ChatMessage> parse_chat_messages(const nlohmann::json& messages);

// Checks shared by HTTP and gRPC (each throws InvalidArgument naming the param):
// the message list's length, each role (system | user | assistant | tool | ipython; "developer"
// is mapped to "system") and each tool call's `arguments` text (JSON nested no deeper than
// kMaxJsonDepth; text that is not JSON at all is kept as text). `param` is the list's name.
void validate_chat_messages(std::vector<ChatMessage>& messages, const std::string& param);
// A `tools` list: at most kMaxTools, each {"type": "function", "function": {"name": ...}},
// at most kMaxToolsPromptBytes as rendered into the prompt. Returns it.
nlohmann::json validate_tools(const nlohmann::json& tools, const std::string& param);
// `response_format` of a chat or completions body: absent, {"type": "text"},
// {"type": "json_object"} or {"type": "json_schema", "json_schema": {"name", "schema",
// "strict"}}. The schema itself is checked by the engine when the request is added (400
// naming what is unsupported).
ResponseFormat parse_response_format(const nlohmann::json& body);
// The format that forces a Llama 3.1 JSON tool call {"name": ..., "parameters": ...} to one
// of `tools` (each validated by validate_tools); errors in a tool's schema name `param`.
ResponseFormat tool_call_format(const nlohmann::json& tools, const std::string& param);
ResponseFormat tool_call_format(const nlohmann::ordered_json& tools, const std::string& param);
// nlohmann::json sorts object keys, but the output follows the schema's property order: this
// re-reads the JSON-schema format of `p` (response_format, or the forced tool call built from
// `forced_tools`) from the raw request `body`, in the body's own key order.
void keep_schema_key_order(const std::string& body, SamplingParams& p,
                           const nlohmann::json& forced_tools);
// The tools of `forced_tools` taken again, matched by function name, from `declared`: the same
// list parsed as ordered_json, in the client's own key order (so a forced call's parameters
// follow the declared property order). nullopt when some forced tool is not there.
std::optional<nlohmann::ordered_json> tools_in_declared_order(
    const nlohmann::ordered_json& declared, const nlohmann::json& forced_tools);
// A per-request prefix-cache salt: non-empty, at most kMaxCacheSaltBytes.
void validate_cache_salt(const std::string& salt, const std::string& param);

}  // namespace herd::server
