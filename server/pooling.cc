// POST /pooling: the scores of a reward model (LlamaForSequenceClassification), in the shape
// of vLLM's /pooling route. Request:
//   {"model"?: "...", "input": "text" | ["text", ...] | [ids] | [[ids], ...]}   or
//   {"model"?: "...", "messages": [{role, content}, ...]}   (rendered with the chat template,
//    no generation prompt: the conversation as it stands is scored)
//   optional: "add_special_tokens" (BOS before text input; default true), "cache_salt".
// Response (one entry per input, in order):
//   {"id": "pool-...", "object": "list", "created": N, "model": "...",
//    "data": [{"index": 0, "object": "pooling", "data": [score per label]}],
//    "usage": {"prompt_tokens": N, "completion_tokens": 0, "total_tokens": N}}
// Errors as the other routes: 400 naming the field (also when the served model is not a
// reward model), 413 past the body limit, 429 queue full, 503 unavailable.
#include "engine/model/config.h"
#include "engine/tokenizer/chat_format.h"
#include "server/http_context.h"
#include "server/openai_request.h"

namespace herd::server {

namespace {

struct PoolingRequest {
  std::string model;
  std::vector<PromptInput> inputs;  // one engine request each
  std::vector<ChatMessage> messages;
  bool is_chat = false;
  bool add_special_tokens = true;
  std::string cache_salt;
};

std::vector<int32_t> token_list(const nlohmann::json& arr) {
  std::vector<int32_t> ids;
  for (const auto& t : arr) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX)
      throw InvalidArgument("input", "token inputs must be lists of non-negative integers");
    ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
  }
  return ids;
}

PoolingRequest parse_pooling_request(const nlohmann::json& b) {
  if (!b.is_object()) throw InvalidArgument("", "the request body must be a JSON object");
  PoolingRequest r;
  auto has = [&](const char* k) { return b.contains(k) && !b[k].is_null(); };
  if (has("model")) {
    if (!b["model"].is_string()) throw InvalidArgument("model", "'model' must be a string");
    r.model = b["model"].get<std::string>();
  }
  if (has("add_special_tokens")) {
    if (!b["add_special_tokens"].is_boolean())
      throw InvalidArgument("add_special_tokens", "'add_special_tokens' must be a boolean");
    r.add_special_tokens = b["add_special_tokens"].get<bool>();
  }
  if (has("cache_salt")) {
    if (!b["cache_salt"].is_string())
      throw InvalidArgument("cache_salt", "'cache_salt' must be a string");
    r.cache_salt = b["cache_salt"].get<std::string>();
    validate_cache_salt(r.cache_salt, "cache_salt");
  }
  if (has("messages") == has("input"))
    throw InvalidArgument(has("messages") ? "messages" : "input",
                          "give exactly one of 'input' and 'messages'");
  if (has("messages")) {
    r.is_chat = true;
    r.messages = parse_chat_messages(b["messages"]);
    validate_chat_messages(r.messages, "messages");
    return r;
  }
  const nlohmann::json& in = b["input"];
  const char* shape =
      "'input' must be a string, a list of strings, token ids or lists of token ids";
  if (in.is_string()) {
    r.inputs.push_back({true, in.get<std::string>(), {}});
  } else if (in.is_array() && !in.empty() && in[0].is_number_integer()) {
    r.inputs.push_back({false, "", token_list(in)});
  } else if (in.is_array() && !in.empty()) {
    for (const auto& e : in) {
      if (e.is_string())
        r.inputs.push_back({true, e.get<std::string>(), {}});
      else if (e.is_array() && !e.empty())
        r.inputs.push_back({false, "", token_list(e)});
      else
        throw InvalidArgument("input", shape);
    }
  } else {
    throw InvalidArgument("input", shape);
  }
  if (r.inputs.size() > kMaxCompletionPrompts)
    throw InvalidArgument("input", "'input' may list at most " +
                                       std::to_string(kMaxCompletionPrompts) + " inputs, got " +
                                       std::to_string(r.inputs.size()));
  return r;
}

// Collects each input's scores; answers once every engine request finished.
class PoolingRun {
 public:
  PoolingRun(const HttpContext& ctx, std::string id, size_t inputs)
      : id_(std::move(id)), model_(ctx.model_name), created_(unix_now()), scores_(inputs) {}

  std::string start_text() { return ""; }  // never streamed
  std::string on_events(std::vector<StreamEvent>& events) {
    collect(events);
    return "";
  }
  std::string done_text(const RequestStream&) { return ""; }

  void collect(std::vector<StreamEvent>& events) {
    for (const auto& ev : events) {
      if (!ev.out.error.empty()) error_ = ev.out.error;
      if (ev.prompt_index >= 0 && size_t(ev.prompt_index) < scores_.size() &&
          !ev.out.scores.empty())
        scores_[size_t(ev.prompt_index)] = ev.out.scores;
    }
  }

  const std::string& engine_error() const { return error_; }

  ordered_json body(const RequestStream& stream) const {
    ordered_json data = ordered_json::array();
    for (size_t i = 0; i < scores_.size(); ++i)
      data.push_back(ordered_json{{"index", i}, {"object", "pooling"}, {"data", scores_[i]}});
    const StreamSummary s = stream.summary();
    ordered_json out;
    out["id"] = id_;
    out["object"] = "list";
    out["created"] = created_;
    out["model"] = model_;
    out["data"] = std::move(data);
    out["usage"] = ordered_json{{"prompt_tokens", s.prompt_tokens},
                                {"completion_tokens", 0},
                                {"total_tokens", s.prompt_tokens}};
    return out;
  }

 private:
  std::string id_, model_;
  int64_t created_;
  std::vector<std::vector<float>> scores_;
  std::string error_;
};

}  // namespace

bool handle_pooling(HttpContext& ctx, const HttpRequest& req, HttpResponse& res,
                    RequestLogEntry& log) {
  auto r = std::make_shared<PoolingRequest>(parse_pooling_request(parse_body(req)));
  check_model(ctx, r->model);
  if (!ctx.client.engine().model_config().is_reward_model())
    throw InvalidArgument("model", "the model `" + ctx.model_name +
                                       "` is not a reward model (LlamaForSequenceClassification): "
                                       "/pooling scores only with one");
  const std::string id = new_request_id("pool-");
  log.id = id;
  std::vector<std::vector<int32_t>> prompts;
  if (r->is_chat) {
    ChatFormatOptions fo;
    fo.add_generation_prompt = false;
    prompts.push_back(encode_llama31_chat(ctx.tok, r->messages, fo));
  }
  for (const PromptInput& in : r->inputs) {
    if (!in.is_text) {
      prompts.push_back(in.ids);
      continue;
    }
    std::vector<int32_t> ids;
    if (r->add_special_tokens && ctx.tok.bos_id() >= 0 && !ctx.tok.adds_bos())
      ids.push_back(ctx.tok.bos_id());
    const auto body = ctx.tok.encode(in.text);
    ids.insert(ids.end(), body.begin(), body.end());
    prompts.push_back(std::move(ids));
  }
  const char* param = r->is_chat ? "messages" : "input";
  std::vector<Request> reqs;
  for (size_t p = 0; p < prompts.size(); ++p) {
    if (prompts[p].empty()) throw InvalidArgument(param, "the input is empty");
    for (int32_t t : prompts[p])
      if (t >= ctx.tok.vocab_size())
        throw InvalidArgument(param, "token id " + std::to_string(t) +
                                         " is outside the vocabulary (size " +
                                         std::to_string(ctx.tok.vocab_size()) + ")");
    // Nothing is generated: the whole context may be prompt.
    if (prompts[p].size() > size_t(ctx.max_model_len))
      throw InvalidArgument(param, "This model's maximum context length is " +
                                       std::to_string(ctx.max_model_len) +
                                       " tokens. However, the input has " +
                                       std::to_string(prompts[p].size()) + " tokens.");
    Request er;
    er.id = prompts.size() == 1 ? id : id + "-" + std::to_string(p);
    er.prompt_ids = std::move(prompts[p]);
    er.cache_salt = r->cache_salt;
    reqs.push_back(std::move(er));
  }
  auto run = std::make_shared<PoolingRun>(ctx, id, reqs.size());
  auto stream = ctx.client.submit(std::move(reqs));
  return respond_with_run(ctx, res, /*streaming=*/false, run, stream, log, r);
}

}  // namespace herd::server
