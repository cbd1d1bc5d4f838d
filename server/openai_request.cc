#include "server/openai_request.h"

#include <charconv>
#include <cmath>
#include <limits>

#include "engine/common/error.h"
#include "server/untrusted_json.h"

namespace herd::server {

using nlohmann::json;

namespace {

// The value of `key`, or nullptr when absent or null.
const json* field(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

bool get_bool(const json& body, const char* key, bool def) {
  const json* v = field(body, key);
  if (!v) return def;
  if (!v->is_boolean()) throw InvalidArgument(key, std::string("'") + key + "' must be a boolean");
  return v->get<bool>();
}

std::optional<double> get_number(const json& body, const char* key, double lo, double hi) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) throw InvalidArgument(key, std::string("'") + key + "' must be a number");
  double d = v->get<double>();
  if (!(d >= lo && d <= hi))
    throw InvalidArgument(key, std::string("'") + key + "' must be between " + std::to_string(lo) +
                                   " and " + std::to_string(hi) + ", got " + v->dump());
  return d;
}

std::optional<int64_t> get_int(const json& body, const char* key, int64_t lo, int64_t hi) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_number_integer())
    throw InvalidArgument(key, std::string("'") + key + "' must be an integer");
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi))
    throw InvalidArgument(key, std::string("'") + key + "' must be at most " + std::to_string(hi));
  int64_t i = v->get<int64_t>();
  if (i < lo || i > hi)
    throw InvalidArgument(key, std::string("'") + key + "' must be between " + std::to_string(lo) +
                                   " and " + std::to_string(hi) + ", got " + std::to_string(i));
  return i;
}

std::string get_string(const json& body, const char* key) {
  const json* v = field(body, key);
  if (!v) return "";
  if (!v->is_string()) throw InvalidArgument(key, std::string("'") + key + "' must be a string");
  return v->get<std::string>();
}

constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();

// Fields shared by /v1/chat/completions and /v1/completions.
void parse_common_sampling(const json& b, SamplingParams& p) {
  if (auto v = get_int(b, "n", 1, kIntMax)) p.n = static_cast<int>(*v);
  if (auto v = get_number(b, "temperature", 0.0, 2.0)) p.temperature = *v;
  if (auto v = get_number(b, "top_p", 0.0, 1.0)) p.top_p = *v;
  if (auto v = get_int(b, "top_k", -1, kIntMax)) p.top_k = static_cast<int>(*v);
  if (auto v = get_number(b, "min_p", 0.0, 1.0)) p.min_p = *v;
  if (auto v = get_number(b, "presence_penalty", -2.0, 2.0)) p.presence_penalty = *v;
  if (auto v = get_number(b, "frequency_penalty", -2.0, 2.0)) p.frequency_penalty = *v;
  if (auto v = get_number(b, "repetition_penalty", 0.0, 1e9)) p.repetition_penalty = *v;
  if (auto v = get_int(b, "min_tokens", 0, kIntMax)) p.min_tokens = static_cast<int>(*v);
  p.ignore_eos = get_bool(b, "ignore_eos", false);
  p.skip_special_tokens = get_bool(b, "skip_special_tokens", true);
  if (const json* v = field(b, "seed")) {
    if (!v->is_number_integer()) throw InvalidArgument("seed", "'seed' must be an integer");
    // OpenAI accepts any 64-bit integer; negative seeds are reinterpreted, not rejected.
    p.seed =
        v->is_number_unsigned() ? v->get<uint64_t>() : static_cast<uint64_t>(v->get<int64_t>());
  }
  if (const json* v = field(b, "stop")) {
    if (v->is_string()) {
      p.stop.push_back(v->get<std::string>());
    } else if (v->is_array()) {
      for (const auto& s : *v) {
        if (!s.is_string())
          throw InvalidArgument("stop", "'stop' must be a string or a list of strings");
        p.stop.push_back(s.get<std::string>());
      }
    } else {
      throw InvalidArgument("stop", "'stop' must be a string or a list of strings");
    }
  }
  if (const json* v = field(b, "stop_token_ids")) {
    if (!v->is_array())
      throw InvalidArgument("stop_token_ids", "'stop_token_ids' must be a list of integers");
    for (const auto& t : *v) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > kIntMax)
        throw InvalidArgument("stop_token_ids", "'stop_token_ids' must be a list of token ids");
      p.stop_token_ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
  }
  if (const json* v = field(b, "logit_bias")) {
    if (!v->is_object())
      throw InvalidArgument("logit_bias", "'logit_bias' must be an object of token id -> bias");
    for (const auto& [key, bias] : v->items()) {
      int32_t id = -1;
      auto [ptr, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
      if (ec != std::errc() || ptr != key.data() + key.size() || id < 0)
        throw InvalidArgument("logit_bias",
                              "'logit_bias' keys must be token ids, got '" + key + "'");
      if (!bias.is_number())
        throw InvalidArgument("logit_bias", "'logit_bias' values must be numbers");
      double d = bias.get<double>();
      if (!(d >= -100.0 && d <= 100.0))
        throw InvalidArgument("logit_bias", "'logit_bias' values must be between -100 and 100");
      p.logit_bias.emplace_back(id, static_cast<float>(d));
    }
  }
}

std::string get_cache_salt(const json& b) {
  if (!field(b, "cache_salt")) return "";
  std::string salt = get_string(b, "cache_salt");
  validate_cache_salt(salt, "cache_salt");
  return salt;
}

bool parse_stream_options(const json& b, bool stream) {
  const json* so = field(b, "stream_options");
  if (!so) return false;
  if (!stream)
    throw InvalidArgument("stream_options",
                          "'stream_options' is only allowed when 'stream' is true");
  if (!so->is_object())
    throw InvalidArgument("stream_options", "'stream_options' must be an object");
  return get_bool(*so, "include_usage", false);
}

std::string content_text(const json& content, const std::string& role) {
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array())
    throw InvalidArgument("messages", "message content must be a string or a list of parts");
  std::string text;
  for (const auto& part : content) {
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
      throw InvalidArgument("messages", "each content part needs a string 'type'");
    std::string type = part["type"].get<std::string>();
    if (type != "text")
      throw InvalidArgument("messages", "content part type '" + type + "' is not supported (" +
                                            role + " message); only 'text' is");
    if (!part.contains("text") || !part["text"].is_string())
      throw InvalidArgument("messages", "a text content part needs a string 'text'");
    if (!text.empty()) text += "\n";  // parts join like vLLM's default text-part separator
    text += part["text"].get<std::string>();
  }
  return text;
}

json parse_tools(const json& b) {
  const json* v = field(b, "tools");
  if (!v) return json::array();
  return validate_tools(*v, "tools");
}

// JSON string escapes as nlohmann writes them (ensure_ascii off).
size_t escaped_size(const std::string& s) {
  size_t n = 2;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
      n += 2;
    else if (c < 0x20)
      n += 6;
    else
      n += 1;
  }
  return n;
}

// The size of j.dump(4) (how engine/tokenizer/chat_format.cc renders a tool into the prompt)
// at nesting `level`, counted without rendering it; stops counting once past `cap`. The
// indentation makes the rendered size grow with depth times lines, which is why the limit is on
// this size and not on the request bytes. Recursion depth is bounded by kMaxJsonDepth (the
// tree came from parse_untrusted_json or from protobuf text parsed the same way).
size_t indented_size(const json& j, size_t level, size_t cap) {
  constexpr size_t kIndent = 4;
  if (j.is_string()) return escaped_size(j.get_ref<const std::string&>());
  if (j.is_object() || j.is_array()) {
    if (j.empty()) return 2;
    size_t n = 2 + level * kIndent + 1;  // "{\n" ... "}"
    for (auto it = j.begin(); it != j.end() && n <= cap; ++it) {
      n += (level + 1) * kIndent + 2;                      // indentation, ",\n" (or "\n")
      if (j.is_object()) n += escaped_size(it.key()) + 2;  // the key and ": "
      n += indented_size(*it, level + 1, cap);
    }
    return n;
  }
  return j.dump().size();
}

}  // namespace

json validate_tools(const json& tools, const std::string& param) {
  if (!tools.is_array()) throw InvalidArgument(param, "'" + param + "' must be a list");
  if (tools.size() > kMaxTools)
    throw InvalidArgument(param, "'" + param + "' may hold at most " + std::to_string(kMaxTools) +
                                     " tools, got " + std::to_string(tools.size()));
  size_t rendered = 0;
  for (size_t i = 0; i < tools.size(); ++i) {
    const json& t = tools[i];
    if (!t.is_object() || !t.contains("type") || t["type"] != "function" ||
        !t.contains("function") || !t["function"].is_object() || !t["function"].contains("name") ||
        !t["function"]["name"].is_string())
      throw InvalidArgument(
          param, "tool " + std::to_string(i) +
                     ": each tool must be {\"type\": \"function\", \"function\": {\"name\": ...}}");
    rendered += indented_size(t, 0, kMaxToolsPromptBytes) + 2;
    if (rendered > kMaxToolsPromptBytes)
      throw InvalidArgument(param, "'" + param +
                                       "' is too large: tool definitions may take at most " +
                                       std::to_string(kMaxToolsPromptBytes) +
                                       " bytes as rendered into the prompt (JSON with 4-space "
                                       "indentation); exceeded at tool " +
                                       std::to_string(i));
  }
  return tools;
}

ResponseFormat parse_response_format(const json& b) {
  ResponseFormat f;
  const json* v = field(b, "response_format");
  if (!v) return f;
  if (!v->is_object() || !v->contains("type") || !(*v)["type"].is_string())
    throw InvalidArgument("response_format", "'response_format' must be an object with a 'type'");
  const std::string type = (*v)["type"].get<std::string>();
  if (type == "text") return f;
  if (type == "json_object") {
    f.type = ResponseFormat::Type::kJsonObject;
    return f;
  }
  if (type != "json_schema")
    throw InvalidArgument("response_format",
                          "'response_format.type' must be text, json_object or json_schema");
  const json* js = field(*v, "json_schema");
  if (!js || !js->is_object())
    throw InvalidArgument("response_format", "'response_format.json_schema' must be an object");
  const json* name = field(*js, "name");
  if (name && !name->is_string())
    throw InvalidArgument("response_format", "'response_format.json_schema.name' must be a string");
  const json* strict = field(*js, "strict");
  if (strict && !strict->is_boolean())
    throw InvalidArgument("response_format",
                          "'response_format.json_schema.strict' must be a boolean");
  const json* schema = field(*js, "schema");
  f.type = ResponseFormat::Type::kJsonSchema;
  // No schema: any JSON value (OpenAI requires one; vLLM accepts its absence).
  f.schema = schema ? schema->dump() : "{}";
  return f;
}

ResponseFormat tool_call_format(const json& tools, const std::string& param) {
  return tool_call_format(nlohmann::ordered_json::parse(tools.dump()), param);
}

ResponseFormat tool_call_format(const nlohmann::ordered_json& tools, const std::string& param) {
  // ordered_json keeps "name" before "parameters", as Llama 3.1 writes its calls.
  nlohmann::ordered_json alts = nlohmann::ordered_json::array();
  for (const auto& t : tools) {
    const auto& fn = t["function"];
    nlohmann::ordered_json call;
    call["type"] = "object";
    call["properties"]["name"] = {{"const", fn["name"]}};
    const bool has_params = fn.contains("parameters") && !fn["parameters"].is_null();
    call["properties"]["parameters"] =
        has_params ? fn["parameters"] : nlohmann::ordered_json{{"type", "object"}};
    call["required"] = {"name", "parameters"};
    call["additionalProperties"] = false;
    alts.push_back(std::move(call));
  }
  ResponseFormat f;
  f.type = ResponseFormat::Type::kJsonSchema;
  f.schema = alts.size() == 1 ? alts[0].dump() : nlohmann::ordered_json{{"anyOf", alts}}.dump();
  f.param = param;
  return f;
}

std::optional<nlohmann::ordered_json> tools_in_declared_order(
    const nlohmann::ordered_json& declared, const json& forced_tools) {
  if (!declared.is_array()) return std::nullopt;
  nlohmann::ordered_json kept = nlohmann::ordered_json::array();
  for (const auto& t : declared)
    for (const json& ft : forced_tools)
      if (t.is_object() && t.contains("function") && t["function"].is_object() &&
          t["function"].contains("name") &&
          // Compared as text: ordered_json and json do not compare with == under clang.
          t["function"]["name"].dump() == ft["function"]["name"].dump()) {
        kept.push_back(t);
        break;
      }
  if (kept.size() != forced_tools.size()) return std::nullopt;
  return kept;
}

void keep_schema_key_order(const std::string& body, SamplingParams& p, const json& forced_tools) {
  ResponseFormat& f = p.response_format;
  if (f.type != ResponseFormat::Type::kJsonSchema) return;
  // The body was already parsed (and its depth bounded) once: this parse cannot fail or nest
  // deeper, but stays defensive.
  const auto b = nlohmann::ordered_json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (b.is_discarded() || !b.is_object()) return;
  if (f.param == "tools") {
    if (!b.contains("tools")) return;
    if (auto kept = tools_in_declared_order(b["tools"], forced_tools))
      f = tool_call_format(*kept, "tools");
    return;
  }
  const auto rf = b.find("response_format");
  if (rf == b.end() || !rf->is_object()) return;
  const auto js = rf->find("json_schema");
  if (js == rf->end() || !js->is_object()) return;
  const auto schema = js->find("schema");
  if (schema != js->end() && !schema->is_null()) f.schema = schema->dump();
}

void validate_cache_salt(const std::string& salt, const std::string& param) {
  if (salt.empty())
    throw InvalidArgument(param, "'" + param + "' must be a non-empty string when given");
  if (salt.size() > kMaxCacheSaltBytes)
    throw InvalidArgument(param, "'" + param + "' may be at most " +
                                     std::to_string(kMaxCacheSaltBytes) + " bytes, got " +
                                     std::to_string(salt.size()));
}

void validate_chat_messages(std::vector<ChatMessage>& messages, const std::string& param) {
  if (messages.empty()) throw InvalidArgument(param, "'" + param + "' must be a non-empty list");
  if (messages.size() > kMaxChatMessages)
    throw InvalidArgument(param, "'" + param + "' may hold at most " +
                                     std::to_string(kMaxChatMessages) + " messages, got " +
                                     std::to_string(messages.size()));
  for (size_t i = 0; i < messages.size(); ++i) {
    ChatMessage& m = messages[i];
    const std::string at = param + "[" + std::to_string(i) + "]";
    if (m.role == "developer") m.role = "system";  // OpenAI's newer name for system
    if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "tool" &&
        m.role != "ipython") {
      std::string shown = m.role.size() > 64 ? m.role.substr(0, 64) + "..." : m.role;
      throw InvalidArgument(at + ".role", "unknown message role '" + shown +
                                              "' (allowed: system, developer, user, assistant, "
                                              "tool, ipython)");
    }
    for (size_t k = 0; k < m.tool_calls.size(); ++k) {
      // Only the depth matters here: text that is not JSON is rendered as text.
      try_parse_untrusted_json(m.tool_calls[k].arguments,
                               at + ".tool_calls[" + std::to_string(k) + "].function.arguments");
    }
  }
}

std::vector<ChatMessage> parse_chat_messages(const json& messages) {
  if (!messages.is_array() || messages.empty())
    throw InvalidArgument("messages", "'messages' must be a non-empty list");
  if (messages.size() > kMaxChatMessages)
    throw InvalidArgument("messages", "'messages' may hold at most " +
                                          std::to_string(kMaxChatMessages) + " messages, got " +
                                          std::to_string(messages.size()));
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    if (!m.is_object()) throw InvalidArgument("messages", "each message must be an object");
    ChatMessage cm;
    if (!m.contains("role") || !m["role"].is_string())
      throw InvalidArgument("messages[" + std::to_string(i) + "].role",
                            "each message needs a string 'role'");
    cm.role = m["role"].get<std::string>();
    cm.content = content_text(m.contains("content") ? m["content"] : json(), cm.role);
    if (cm.role == "tool") {
      const json* id = field(m, "tool_call_id");
      if (id && !id->is_string())
        throw InvalidArgument("messages", "'tool_call_id' must be a string");
      if (id) cm.tool_call_id = id->get<std::string>();
    }
    if (const json* calls = field(m, "tool_calls")) {
      if (!calls->is_array()) throw InvalidArgument("messages", "'tool_calls' must be a list");
      for (const auto& c : *calls) {
        if (!c.is_object() || !c.contains("function") || !c["function"].is_object())
          throw InvalidArgument("messages", "each tool call needs a 'function' object");
        const json& f = c["function"];
        ChatToolCall tc;
        if (!f.contains("name") || !f["name"].is_string())
          throw InvalidArgument("messages", "each tool call needs a function 'name'");
        tc.name = f["name"].get<std::string>();
        if (f.contains("arguments")) {
          if (f["arguments"].is_string())
            tc.arguments = f["arguments"].get<std::string>();
          else if (f["arguments"].is_object())
            tc.arguments = f["arguments"].dump();
          else
            throw InvalidArgument("messages", "tool call 'arguments' must be a JSON string");
        } else {
          tc.arguments = "{}";
        }
        if (c.contains("id") && c["id"].is_string()) tc.id = c["id"].get<std::string>();
        cm.tool_calls.push_back(std::move(tc));
      }
    }
    out.push_back(std::move(cm));
  }
  validate_chat_messages(out, "messages");
  return out;
}

ChatCompletionRequest parse_chat_request(const json& b) {
  if (!b.is_object()) throw InvalidArgument("", "the request body must be a JSON object");
  ChatCompletionRequest r;
  r.model = get_string(b, "model");
  if (!b.contains("messages")) throw InvalidArgument("messages", "'messages' is required");
  r.messages = parse_chat_messages(b["messages"]);
  parse_common_sampling(b, r.params);
  r.params.response_format = parse_response_format(b);
  auto max_tokens = get_int(b, "max_completion_tokens", 1, kIntMax);
  if (!max_tokens) max_tokens = get_int(b, "max_tokens", 1, kIntMax);
  if (max_tokens) r.params.max_tokens = static_cast<int>(*max_tokens);
  r.stream = get_bool(b, "stream", false);
  r.include_usage = parse_stream_options(b, r.stream);
  r.logprobs = get_bool(b, "logprobs", false);
  if (auto v = get_int(b, "top_logprobs", 0, 20)) {
    if (!r.logprobs)
      throw InvalidArgument("top_logprobs", "'top_logprobs' needs 'logprobs' set to true");
    r.top_logprobs = static_cast<int>(*v);
  }
  if (r.logprobs) r.params.logprobs = r.top_logprobs;
  r.add_generation_prompt = get_bool(b, "add_generation_prompt", true);
  r.cache_salt = get_cache_salt(b);
  json tools = parse_tools(b);
  const json* choice = field(b, "tool_choice");
  std::string mode = tools.empty() ? "none" : "auto";
  if (choice) {
    if (choice->is_string()) {
      mode = choice->get<std::string>();
      if (mode != "none" && mode != "auto" && mode != "required")
        throw InvalidArgument("tool_choice",
                              "'tool_choice' must be none, auto, required or a named function");
    } else if (choice->is_object() && choice->contains("function") &&
               (*choice)["function"].is_object() && (*choice)["function"].contains("name") &&
               (*choice)["function"]["name"].is_string()) {
      std::string name = (*choice)["function"]["name"].get<std::string>();
      json only = json::array();
      for (const auto& t : tools)
        if (t["function"]["name"] == name) only.push_back(t);
      if (only.empty())
        throw InvalidArgument("tool_choice",
                              "tool_choice names function '" + name + "', which is not in 'tools'");
      tools = only;
      mode = "named";
    } else {
      throw InvalidArgument("tool_choice",
                            "'tool_choice' must be none, auto, required or a named function");
    }
    if (mode != "none" && tools.empty())
      throw InvalidArgument("tool_choice", "'tool_choice' needs 'tools'");
  }
  if (mode != "none") {
    r.tools = tools;
    r.parse_tool_calls = true;
  }
  // "required" or a named function: the reply is a tool call by construction (constrained
  // decoding), not by the model's choice.
  if (mode == "required" || mode == "named") {
    if (r.params.response_format.type != ResponseFormat::Type::kText)
      throw InvalidArgument("response_format",
                            "'response_format' cannot be combined with a tool_choice that forces "
                            "a tool call");
    r.params.response_format = tool_call_format(tools, "tools");
  }
  return r;
}

CompletionRequest parse_completion_request(const json& b) {
  if (!b.is_object()) throw InvalidArgument("", "the request body must be a JSON object");
  CompletionRequest r;
  r.model = get_string(b, "model");
  const json* p = field(b, "prompt");
  if (!p) throw InvalidArgument("prompt", "'prompt' is required");
  auto token_list = [](const json& arr) {
    std::vector<int32_t> ids;
    for (const auto& t : arr) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > kIntMax)
        throw InvalidArgument("prompt", "token prompts must be lists of non-negative integers");
      ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
    return ids;
  };
  if (p->is_string()) {
    r.prompts.push_back({true, p->get<std::string>(), {}});
  } else if (p->is_array() && !p->empty() && (*p)[0].is_number_integer()) {
    r.prompts.push_back({false, "", token_list(*p)});
  } else if (p->is_array() && !p->empty()) {
    for (const auto& e : *p) {
      if (e.is_string())
        r.prompts.push_back({true, e.get<std::string>(), {}});
      else if (e.is_array() && !e.empty())
        r.prompts.push_back({false, "", token_list(e)});
      else
        throw InvalidArgument(
            "prompt",
            "'prompt' must be a string, a list of strings, token ids or lists of token ids");
    }
  } else {
    throw InvalidArgument(
        "prompt", "'prompt' must be a string, a list of strings, token ids or lists of token ids");
  }
  if (r.prompts.size() > kMaxCompletionPrompts)
    throw InvalidArgument("prompt", "'prompt' may list at most " +
                                        std::to_string(kMaxCompletionPrompts) + " prompts, got " +
                                        std::to_string(r.prompts.size()));
  parse_common_sampling(b, r.params);
  r.params.response_format = parse_response_format(b);
  // OpenAI's legacy default for /v1/completions.
  r.params.max_tokens = static_cast<int>(get_int(b, "max_tokens", 1, kIntMax).value_or(16));
  r.stream = get_bool(b, "stream", false);
  r.include_usage = parse_stream_options(b, r.stream);
  r.echo = get_bool(b, "echo", false);
  if (auto v = get_int(b, "logprobs", 0, 20)) {
    r.logprobs = static_cast<int>(*v);
    r.params.logprobs = r.logprobs;
  }
  r.add_special_tokens = get_bool(b, "add_special_tokens", true);
  r.cache_salt = get_cache_salt(b);
  if (!get_string(b, "suffix").empty())
    throw InvalidArgument("suffix", "'suffix' is not supported");
  return r;
}

TokenizeRequest parse_tokenize_request(const json& b) {
  if (!b.is_object()) throw InvalidArgument("", "the request body must be a JSON object");
  TokenizeRequest r;
  r.return_token_strs = get_bool(b, "return_token_strs", false);
  if (field(b, "messages")) {
    r.is_chat = true;
    r.messages = parse_chat_messages(b["messages"]);
    r.tools = parse_tools(b);
    r.add_generation_prompt = get_bool(b, "add_generation_prompt", true);
    // vLLM: the chat template already holds <|begin_of_text|>, so no extra BOS by default.
    r.add_special_tokens = get_bool(b, "add_special_tokens", false);
    return r;
  }
  const json* p = field(b, "prompt");
  if (!p || !p->is_string())
    throw InvalidArgument("prompt", "'prompt' (a string) or 'messages' is required");
  r.prompt = p->get<std::string>();
  r.add_special_tokens = get_bool(b, "add_special_tokens", true);
  return r;
}

std::vector<int32_t> parse_detokenize_request(const json& b) {
  if (!b.is_object()) throw InvalidArgument("", "the request body must be a JSON object");
  const json* t = field(b, "tokens");
  if (!t || !t->is_array()) throw InvalidArgument("tokens", "'tokens' must be a list of token ids");
  std::vector<int32_t> ids;
  for (const auto& v : *t) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > kIntMax)
      throw InvalidArgument("tokens", "'tokens' must be a list of token ids");
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  return ids;
}

}  // namespace herd::server
