// Llama 3.1 prompt format as Meta documents it and as the chat template shipped with
// Llama-3.1-*-Instruct renders it. Custom tools go into the first user message (Meta's
// default); when the conversation does not start with a user message they go into the system
// message instead (the template's tools_in_user_message=false form).
#include "engine/tokenizer/chat_format.h"

#include "engine/tokenizer/json_text.h"

namespace herd {

namespace {

const char* const kHeaderStart = "<|start_header_id|>";
const char* const kHeaderEnd = "<|end_header_id|>\n\n";
const char* const kEot = "<|eot_id|>";
const char* const kEom = "<|eom_id|>";
const char* const kFormatHint =
    "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument "
    "name and its value}.Do not use variables.\n\n";

std::string header(const std::string& role) { return kHeaderStart + role + kHeaderEnd; }

std::string tool_definitions(const nlohmann::json& tools) {
  std::string out;
  for (const auto& t : tools) {
    out += t.dump(4, ' ', false, nlohmann::json::error_handler_t::replace);
    out += "\n\n";
  }
  return out;
}

// {"name": "f", "parameters": {...}} exactly as the template writes a past tool call.
std::string render_tool_call(const ChatToolCall& call) {
  std::string out = "{\"name\": ";
  out += python_json_dumps(nlohmann::json(call.name));
  out += ", \"parameters\": ";
  nlohmann::json args = nlohmann::json::parse(call.arguments, nullptr, false);
  if (args.is_discarded()) {
    out += call.arguments.empty() ? std::string("{}") : call.arguments;
  } else {
    out += python_json_dumps(args);
  }
  out += "}";
  return out;
}

}  // namespace

std::string format_llama31_chat(const std::vector<ChatMessage>& messages,
                                const ChatFormatOptions& opts) {
  const bool has_tools = opts.tools.is_array() && !opts.tools.empty();
  size_t next = 0;
  std::string system_message;
  if (next < messages.size() && messages[next].role == "system")
    system_message = trim_whitespace(messages[next++].content);
  const bool tools_in_user = has_tools && next < messages.size() && messages[next].role == "user";

  std::string out = "<|begin_of_text|>";
  out += header("system");
  if (has_tools || opts.builtin_ipython) out += "Environment: ipython\n";
  out += "Cutting Knowledge Date: " + opts.cutting_knowledge_date + "\n";
  out += "Today Date: " + opts.today_date + "\n\n";
  if (has_tools && !tools_in_user) {
    out +=
        "You have access to the following functions. To call a function, please respond with "
        "JSON for a function call.";
    out += kFormatHint;
    out += tool_definitions(opts.tools);
  }
  out += system_message;
  out += kEot;

  if (tools_in_user) {
    out += header("user");
    out +=
        "Given the following functions, please respond with a JSON for a function call with its "
        "proper arguments that best answers the given prompt.\n\n";
    out += kFormatHint;
    out += tool_definitions(opts.tools);
    out += trim_whitespace(messages[next++].content);
    out += kEot;
  }

  for (; next < messages.size(); ++next) {
    const ChatMessage& m = messages[next];
    if (m.role == "tool" || m.role == "ipython") {
      out += header("ipython") + m.content + kEot;
    } else if (!m.tool_calls.empty()) {
      out += header("assistant");
      for (size_t i = 0; i < m.tool_calls.size(); ++i) {
        if (i) out += "; ";
        out += render_tool_call(m.tool_calls[i]);
      }
      // With the ipython environment a call ends the message, not the turn.
      out += opts.builtin_ipython ? kEom : kEot;
    } else {
      out += header(m.role) + trim_whitespace(m.content) + kEot;
    }
  }
  if (opts.add_generation_prompt) out += header("assistant");
  return out;
}

}  // namespace herd
