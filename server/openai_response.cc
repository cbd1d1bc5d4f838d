#include "server/openai_response.h"

#include <cstdio>

#include "engine/model/config.h"

namespace herd::server {

namespace {

ordered_json null_or(const std::string& s) { return s.empty() ? ordered_json() : ordered_json(s); }

// Token text for JSON: the raw bytes; to_json_text replaces invalid UTF-8 when serializing.
std::string token_text(const Tokenizer& tok, int32_t id) { return tok.token_bytes(id); }

ordered_json token_bytes_json(const std::string& bytes) {
  ordered_json a = ordered_json::array();
  for (unsigned char c : bytes) a.push_back(static_cast<int>(c));
  return a;
}

}  // namespace

ordered_json error_body(const std::string& message, const std::string& type,
                        const std::string& param, const std::string& code) {
  ordered_json e;
  e["message"] = message;
  e["type"] = type;
  e["param"] = null_or(param);
  e["code"] = null_or(code);
  ordered_json b;
  b["error"] = e;
  return b;
}

std::string to_json_text(const ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string sse_data(const ordered_json& j) { return "data: " + to_json_text(j) + "\n\n"; }

ordered_json usage_json(const Usage& u) {
  ordered_json j;
  j["prompt_tokens"] = u.prompt_tokens;
  j["completion_tokens"] = u.completion_tokens;
  j["total_tokens"] = u.prompt_tokens + u.completion_tokens;
  ordered_json prompt_details;
  prompt_details["cached_tokens"] = u.cached_prompt_tokens;
  prompt_details["audio_tokens"] = 0;
  j["prompt_tokens_details"] = prompt_details;
  ordered_json completion_details;
  completion_details["reasoning_tokens"] = 0;
  completion_details["audio_tokens"] = 0;
  completion_details["accepted_prediction_tokens"] = 0;
  completion_details["rejected_prediction_tokens"] = 0;
  j["completion_tokens_details"] = completion_details;
  return j;
}

std::string system_fingerprint(const Engine& engine, const std::string& model_name) {
  const ModelConfig& c = engine.model_config();
  std::string in = std::string(kHerdVersion) + '\0' + model_name;
  for (int64_t v : {c.vocab_size, c.hidden_size, c.intermediate_size, c.num_hidden_layers,
                    c.num_attention_heads, c.num_key_value_heads, c.head_dim,
                    static_cast<int64_t>(engine.tokenizer().vocab_size()),
                    static_cast<int64_t>(engine.max_model_len())})
    in += '\0' + std::to_string(v);
  in += '\0' + std::to_string(c.rope_theta) + '\0' + std::to_string(c.rms_norm_eps);
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64
  for (unsigned char ch : in) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::string("herd-") + kHerdVersion + "-" + std::string(hex, 12);
}

ordered_json aborted_error_body() {
  return error_body(kAbortedMessage, "server_error", "", "request_aborted");
}

ordered_json chat_logprobs_entries(const Tokenizer& tok, const std::vector<TokenLogprob>& lps,
                                   int top_n) {
  ordered_json content = ordered_json::array();
  for (const auto& lp : lps) {
    std::string t = token_text(tok, lp.id);
    ordered_json e;
    e["token"] = t;
    e["logprob"] = lp.logprob;
    e["bytes"] = token_bytes_json(t);
    ordered_json top = ordered_json::array();
    for (int k = 0; k < top_n && k < static_cast<int>(lp.top.size()); ++k) {
      std::string tt = token_text(tok, lp.top[k].first);
      top.push_back(
          {{"token", tt}, {"logprob", lp.top[k].second}, {"bytes", token_bytes_json(tt)}});
    }
    e["top_logprobs"] = top;
    content.push_back(e);
  }
  return content;
}

ordered_json tool_calls_json(const std::vector<ChatToolCall>& calls, bool with_index) {
  ordered_json a = ordered_json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    ordered_json c;
    if (with_index) c["index"] = i;
    c["id"] = calls[i].id;
    c["type"] = "function";
    c["function"] = {{"name", calls[i].name}, {"arguments", calls[i].arguments}};
    a.push_back(c);
  }
  return a;
}

namespace {
// The members every completion object and chunk starts with, in OpenAI's order.
ordered_json object_head(const std::string& id, const char* object, int64_t created,
                         const std::string& model) {
  ordered_json b;
  b["id"] = id;
  b["object"] = object;
  b["created"] = created;
  b["model"] = model;
  return b;
}
}  // namespace

ordered_json chat_completion_body(const std::string& id, int64_t created, const std::string& model,
                                  const std::string& fingerprint,
                                  const std::vector<ChatChoiceResult>& choices, const Usage& u) {
  ordered_json b = object_head(id, "chat.completion", created, model);
  ordered_json cs = ordered_json::array();
  for (const auto& c : choices) {
    ordered_json msg;
    msg["role"] = "assistant";
    if (c.tool_calls.empty()) {
      msg["content"] = c.content;
    } else {
      msg["content"] = nullptr;
      msg["tool_calls"] = tool_calls_json(c.tool_calls, false);
    }
    msg["refusal"] = nullptr;
    ordered_json choice;
    choice["index"] = c.index;
    choice["message"] = msg;
    choice["logprobs"] = c.logprobs ? *c.logprobs : ordered_json();
    choice["finish_reason"] = null_or(c.finish_reason);
    cs.push_back(choice);
  }
  b["choices"] = cs;
  b["usage"] = usage_json(u);
  b["system_fingerprint"] = fingerprint;
  return b;
}

ordered_json chat_chunk(const std::string& id, int64_t created, const std::string& model,
                        const std::string& fingerprint, int index, ordered_json delta,
                        const std::string& finish_reason, std::optional<ordered_json> logprobs,
                        bool usage_null) {
  ordered_json b = object_head(id, "chat.completion.chunk", created, model);
  b["system_fingerprint"] = fingerprint;
  ordered_json choice;
  choice["index"] = index;
  choice["delta"] = std::move(delta);
  choice["logprobs"] = logprobs ? *logprobs : ordered_json();
  choice["finish_reason"] = null_or(finish_reason);
  b["choices"] = ordered_json::array({choice});
  if (usage_null) b["usage"] = nullptr;
  return b;
}

ordered_json usage_chunk(const std::string& id, int64_t created, const std::string& model,
                         const std::string& fingerprint, const std::string& object,
                         const Usage& u) {
  ordered_json b;
  b["id"] = id;
  b["object"] = object;
  b["created"] = created;
  b["model"] = model;
  b["system_fingerprint"] = fingerprint;
  b["choices"] = ordered_json::array();
  b["usage"] = usage_json(u);
  return b;
}

void CompletionLogprobs::add_prompt_token(const Tokenizer& tok, int32_t id) {
  std::string t = token_text(tok, id);
  tokens_.push_back(t);
  token_logprobs_.push_back(nullptr);
  top_.push_back(nullptr);
  offsets_.push_back(offset_);
  offset_ += t.size();
}

void CompletionLogprobs::add(const Tokenizer& tok, const TokenLogprob& lp, int top_n) {
  std::string t = token_text(tok, lp.id);
  tokens_.push_back(t);
  token_logprobs_.push_back(lp.logprob);
  ordered_json top = ordered_json::object();
  for (int k = 0; k < top_n && k < static_cast<int>(lp.top.size()); ++k)
    top[token_text(tok, lp.top[k].first)] = lp.top[k].second;
  top_.push_back(top);
  offsets_.push_back(offset_);
  offset_ += t.size();
}

ordered_json CompletionLogprobs::json() const {
  ordered_json j;
  j["tokens"] = tokens_;
  j["token_logprobs"] = token_logprobs_;
  j["top_logprobs"] = top_;
  j["text_offset"] = offsets_;
  return j;
}

ordered_json CompletionLogprobs::take_new() {
  ordered_json j;
  auto slice = [&](const ordered_json& a) {
    ordered_json r = ordered_json::array();
    for (size_t i = taken_; i < a.size(); ++i) r.push_back(a[i]);
    return r;
  };
  j["tokens"] = slice(tokens_);
  j["token_logprobs"] = slice(token_logprobs_);
  j["top_logprobs"] = slice(top_);
  j["text_offset"] = slice(offsets_);
  taken_ = tokens_.size();
  return j;
}

ordered_json completion_body(const std::string& id, int64_t created, const std::string& model,
                             const std::string& fingerprint,
                             const std::vector<CompletionChoiceResult>& choices, const Usage& u) {
  ordered_json b = object_head(id, "text_completion", created, model);
  ordered_json cs = ordered_json::array();
  for (const auto& c : choices) {
    ordered_json choice;
    choice["index"] = c.index;
    choice["text"] = c.text;
    choice["logprobs"] = c.logprobs ? *c.logprobs : ordered_json();
    choice["finish_reason"] = null_or(c.finish_reason);
    cs.push_back(choice);
  }
  b["choices"] = cs;
  b["usage"] = usage_json(u);
  b["system_fingerprint"] = fingerprint;
  return b;
}

ordered_json completion_chunk(const std::string& id, int64_t created, const std::string& model,
                              const std::string& fingerprint, int index, const std::string& text,
                              const std::string& finish_reason,
                              std::optional<ordered_json> logprobs, bool usage_null) {
  ordered_json b = object_head(id, "text_completion", created, model);
  b["system_fingerprint"] = fingerprint;
  ordered_json choice;
  choice["index"] = index;
  choice["text"] = text;
  choice["logprobs"] = logprobs ? *logprobs : ordered_json();
  choice["finish_reason"] = null_or(finish_reason);
  b["choices"] = ordered_json::array({choice});
  if (usage_null) b["usage"] = nullptr;
  return b;
}

std::string openai_finish_reason(FinishReason r) {
  switch (r) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kAbort:
      return "abort";
    case FinishReason::kNone:
      break;
  }
  return "";
}

}  // namespace herd::server
