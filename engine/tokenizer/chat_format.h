// Llama 3.1 chat prompt format (Meta's documented format): header tokens, <|eot_id|>,
// <|eom_id|>, <|python_tag|>, the "Environment: ipython" / "Cutting Knowledge Date" system
// block, JSON tool definitions and tool calls. Produces text meant to be encoded with
// allow_special = true; parses the model's tool calls back.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace herd {

struct ChatToolCall {
  std::string id;             // "call_..." as OpenAI sends them (assigned when parsed)
  std::string name;
  std::string arguments;      // JSON text of the arguments object
};

struct ChatMessage {
  std::string role;           // system | user | assistant | tool | ipython
  std::string content;
  std::vector<ChatToolCall> tool_calls;  // assistant turns that called tools
  std::string tool_call_id;   // tool turns: which call this answers
};

struct ChatFormatOptions {
  nlohmann::json tools = nlohmann::json::array();  // OpenAI-style [{type:function,function:{...}}]
  bool add_generation_prompt = true;               // end with the assistant header
  std::string cutting_knowledge_date = "December 2023";
  std::string today_date = "26 Jul 2024";
  bool builtin_ipython = false;                    // adds "Environment: ipython"
};

// The full prompt text, starting with <|begin_of_text|>.
std::string format_llama31_chat(const std::vector<ChatMessage>& messages,
                                const ChatFormatOptions& opts = {});

// Parses a finished assistant reply for tool calls: either a JSON object
// {"name": ..., "parameters": {...}} (optionally after <|python_tag|>), or several separated by
// ';'. Returns nullopt when the text is not a tool call. Call ids are "call_" + a counter-free
// random-looking id derived from `id_seed` so they are unique per response.
std::optional<std::vector<ChatToolCall>> parse_llama31_tool_calls(const std::string& text,
                                                                  const std::string& id_seed);

}  // namespace herd
