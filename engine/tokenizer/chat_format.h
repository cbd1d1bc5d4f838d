// Llama 3.1 chat prompt format (Meta's documented format): header tokens, <|eot_id|>,
// <|eom_id|>, <|python_tag|>, the "Environment: ipython" / "Cutting Knowledge Date" system
// block, JSON tool definitions and tool calls. The prompt is rendered as segments (the
// template's own control-token markers vs. text) and encoded so that only the markers become
// special tokens: text from the request can never forge a turn. Parses the model's tool calls
// back.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace herd {

class Tokenizer;

struct ChatToolCall {
  std::string id;  // "call_..." as OpenAI sends them (assigned when parsed)
  std::string name;
  std::string arguments;  // JSON text of the arguments object
};

struct ChatMessage {
  std::string role;  // system | user | assistant | tool | ipython
  std::string content;
  std::vector<ChatToolCall> tool_calls;  // assistant turns that called tools
  std::string tool_call_id;              // tool turns: which call this answers
};

struct ChatFormatOptions {
  nlohmann::json tools = nlohmann::json::array();  // OpenAI-style [{type:function,function:{...}}]
  bool add_generation_prompt = true;               // end with the assistant header
  std::string cutting_knowledge_date = "December 2023";
  std::string today_date = "26 Jul 2024";
  bool builtin_ipython = false;  // adds "Environment: ipython"
};

// One piece of a rendered prompt, in order.
struct ChatSegment {
  enum class Kind {
    kMarker,    // a control token of the template: <|begin_of_text|>, <|start_header_id|>,
                // <|end_header_id|>, <|eot_id|>, <|eom_id|>
    kTemplate,  // text the template itself writes ("\n\n", "Cutting Knowledge Date: ...")
    kContent,   // text from the request: message contents, role names, tool definitions,
                // tool-call names and arguments, tool results
  };
  Kind kind;
  std::string text;
};

// The prompt as segments. Throws herd::InvalidArgument naming the field
// (`tools[i]`, `messages[i].tool_calls[j].function.arguments`) when a tool definition or
// tool-call arguments nest deeper than kMaxJsonDepth (json_text.h); nothing deeper is ever
// walked.
std::vector<ChatSegment> render_llama31_chat(const std::vector<ChatMessage>& messages,
                                             const ChatFormatOptions& opts = {});

// The full prompt text, starting with <|begin_of_text|> (the segments' texts joined). For
// display and debugging only: encoding this text with allow_special would turn special-token
// strings inside message contents into control tokens. Encode with encode_llama31_chat.
std::string format_llama31_chat(const std::vector<ChatMessage>& messages,
                                const ChatFormatOptions& opts = {});

// The prompt ids the model is fed for a chat: the one function the chat route, gRPC Chat,
// /tokenize with messages and `herd chat` all call. Only the template's markers become
// special tokens; every other text (request content included) is encoded as plain text, so
// "<|eot_id|>" typed into a message becomes ordinary text tokens (what Hugging Face gives
// with split_special_tokens=True). Starts with <|begin_of_text|> when the vocabulary has it.
// Throws as render_llama31_chat does.
std::vector<int32_t> encode_llama31_chat(const Tokenizer& tok,
                                         const std::vector<ChatMessage>& messages,
                                         const ChatFormatOptions& opts = {});

// Parses a finished assistant reply for tool calls: either a JSON object
// {"name": ..., "parameters": {...}} (optionally after <|python_tag|>), or several separated by
// ';'. Returns nullopt when the text is not a tool call. Call ids are "call_" + a counter-free
// random-looking id derived from `id_seed` so they are unique per response.
std::optional<std::vector<ChatToolCall>> parse_llama31_tool_calls(const std::string& text,
                                                                  const std::string& id_seed);

}  // namespace herd
