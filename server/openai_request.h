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

}  // namespace herd::server
