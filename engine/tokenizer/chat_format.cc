// Llama 3.1 prompt format as Meta documents it and as the chat template shipped with
// Llama-3.1-*-Instruct renders it. Custom tools go into the first user message (Meta's
// default); when the conversation does not start with a user message they go into the system
// message instead (the template's tools_in_user_message=false form).
//
// Encoding (encode_llama31_chat): the template's markers are looked up as special tokens; the
// text between two markers — template text and request content alike — is encoded in one piece
// with allow_special=false. Why piecewise at the markers and whole in between:
//  - A special token is a hard boundary for every tokenizer here: the encoders already split
//    the text at added tokens before BPE, so encoding the runs between markers separately gives
//    exactly the ids of encoding the whole rendered text (for text without special-token
//    strings in it, the ids are the same as before this change, token for token).
//  - Between two markers the template writes only newlines and fixed prose next to the
//    content ("<|end_header_id|>" "\n\n" content "<|eot_id|>"). Encoding that run whole keeps
//    the merges the chat template's tokenization has ("}\n\n" after a tool definition, the
//    sentencepiece "▁" prefix once per run), and for a content that starts with a
//    non-space character the run's ids are encode("\n\n") followed by encode(content): the
//    byte-level split pattern always ends a "\n\n" pre-token at the last newline.
//  - Nothing in a run is ever matched as a special token, so content can only add text tokens.
#include "engine/tokenizer/chat_format.h"

#include "engine/common/error.h"
#include "engine/tokenizer/json_text.h"
#include "engine/tokenizer/tokenizer.h"

namespace herd {

namespace {

const char* const kBeginOfText = "<|begin_of_text|>";
const char* const kHeaderStart = "<|start_header_id|>";
const char* const kHeaderEnd = "<|end_header_id|>";
const char* const kEot = "<|eot_id|>";
const char* const kEom = "<|eom_id|>";
const char* const kFormatHint =
    "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument "
    "name and its value}.Do not use variables.\n\n";

using Kind = ChatSegment::Kind;

class Renderer {
 public:
  void marker(const char* m) { out_.push_back({Kind::kMarker, m}); }
  void text(std::string t) { add(Kind::kTemplate, std::move(t)); }
  void content(std::string t) { add(Kind::kContent, std::move(t)); }
  void header(const std::string& role) {
    marker(kHeaderStart);
    content(role);
    marker(kHeaderEnd);
    text("\n\n");
  }
  std::vector<ChatSegment> take() { return std::move(out_); }

 private:
  void add(Kind k, std::string t) {
    if (t.empty()) return;
    out_.push_back({k, std::move(t)});
  }
  std::vector<ChatSegment> out_;
};

void tool_definitions(const nlohmann::json& tools, Renderer& r) {
  for (size_t i = 0; i < tools.size(); ++i) {
    const nlohmann::json& t = tools[i];
    // nlohmann's dump recurses once per level: check the depth first, without recursing.
    if (!json_depth_within(t, kMaxJsonDepth))
      throw InvalidArgument(
          "tools[" + std::to_string(i) + "]",
          "tool definition nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    r.content(t.dump(4, ' ', false, nlohmann::json::error_handler_t::replace));
    r.text("\n\n");
  }
}

// {"name": "f", "parameters": {...}} exactly as the template writes a past tool call.
void render_tool_call(const ChatToolCall& call, const std::string& param, Renderer& r) {
  if (!json_text_depth_within(call.arguments, kMaxJsonDepth))
    throw InvalidArgument(
        param, "tool-call arguments nest deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  r.text("{\"name\": ");
  r.content(python_json_dumps(nlohmann::json(call.name)));
  r.text(", \"parameters\": ");
  nlohmann::json args = nlohmann::json::parse(call.arguments, nullptr, false);
  if (args.is_discarded()) {
    if (call.arguments.empty())
      r.text("{}");
    else
      r.content(call.arguments);
  } else {
    r.content(python_json_dumps(args));
  }
  r.text("}");
}

}  // namespace

std::vector<ChatSegment> render_llama31_chat(const std::vector<ChatMessage>& messages,
                                             const ChatFormatOptions& opts) {
  const bool has_tools = opts.tools.is_array() && !opts.tools.empty();
  size_t next = 0;
  std::string system_message;
  if (next < messages.size() && messages[next].role == "system")
    system_message = trim_whitespace(messages[next++].content);
  const bool tools_in_user = has_tools && next < messages.size() && messages[next].role == "user";

  Renderer r;
  r.marker(kBeginOfText);
  r.header("system");
  if (has_tools || opts.builtin_ipython) r.text("Environment: ipython\n");
  r.text("Cutting Knowledge Date: " + opts.cutting_knowledge_date + "\n");
  r.text("Today Date: " + opts.today_date + "\n\n");
  if (has_tools && !tools_in_user) {
    r.text(
        "You have access to the following functions. To call a function, please respond with "
        "JSON for a function call.");
    r.text(kFormatHint);
    tool_definitions(opts.tools, r);
  }
  r.content(system_message);
  r.marker(kEot);

  if (tools_in_user) {
    r.header("user");
    r.text(
        "Given the following functions, please respond with a JSON for a function call with its "
        "proper arguments that best answers the given prompt.\n\n");
    r.text(kFormatHint);
    tool_definitions(opts.tools, r);
    r.content(trim_whitespace(messages[next++].content));
    r.marker(kEot);
  }

  for (; next < messages.size(); ++next) {
    const ChatMessage& m = messages[next];
    if (m.role == "tool" || m.role == "ipython") {
      r.header("ipython");
      r.content(m.content);
      r.marker(kEot);
    } else if (!m.tool_calls.empty()) {
      r.header("assistant");
      for (size_t i = 0; i < m.tool_calls.size(); ++i) {
        if (i) r.text("; ");
        render_tool_call(m.tool_calls[i],
                         "messages[" + std::to_string(next) + "].tool_calls[" + std::to_string(i) +
                             "].function.arguments",
                         r);
      }
      // With the ipython environment a call ends the message, not the turn.
      r.marker(opts.builtin_ipython ? kEom : kEot);
    } else {
      r.header(m.role);
      r.content(trim_whitespace(m.content));
      r.marker(kEot);
    }
  }
  if (opts.add_generation_prompt) r.header("assistant");
  return r.take();
}

std::string format_llama31_chat(const std::vector<ChatMessage>& messages,
                                const ChatFormatOptions& opts) {
  std::string out;
  for (const auto& s : render_llama31_chat(messages, opts)) out += s.text;
  return out;
}

std::vector<int32_t> encode_llama31_chat(const Tokenizer& tok,
                                         const std::vector<ChatMessage>& messages,
                                         const ChatFormatOptions& opts) {
  std::vector<int32_t> ids;
  std::string run;  // text since the last marker (see the comment at the top of the file)
  auto flush = [&] {
    if (run.empty()) return;
    std::vector<int32_t> t = tok.encode(run, /*allow_special=*/false);
    ids.insert(ids.end(), t.begin(), t.end());
    run.clear();
  };
  for (auto& s : render_llama31_chat(messages, opts)) {
    if (s.kind == Kind::kMarker) {
      auto id = tok.token_id(s.text);
      if (id && tok.is_special(*id)) {
        flush();
        ids.push_back(*id);
        continue;
      }
      // A vocabulary without this control token (a sentencepiece Llama 2 vocab): the marker
      // is text, as the rendered template always was for it.
    }
    run += s.text;
  }
  flush();
  return ids;
}

}  // namespace herd
