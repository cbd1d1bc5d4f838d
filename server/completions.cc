// POST /v1/completions: one engine request per prompt (string, token ids, or a list of either);
// choice index = prompt_index * n + sample index, as OpenAI numbers them.
#include "server/http_context.h"
#include "server/openai_request.h"

namespace herd::server {

namespace {

struct CompletionChoiceState {
  std::string text;
  CompletionLogprobs lps;
  std::string finish;
};

class CompletionRun {
 public:
  CompletionRun(HttpContext& ctx, const CompletionRequest& r, std::string id,
                std::vector<std::vector<int32_t>> prompt_ids)
      : ctx_(ctx),
        r_(r),
        id_(std::move(id)),
        created_(unix_now()),
        fingerprint_(system_fingerprint(ctx.client.engine(), ctx.model_name)),
        prompt_ids_(std::move(prompt_ids)),
        choices_(prompt_ids_.size() * r.params.n) {
    if (!r_.echo) return;
    for (size_t p = 0; p < prompt_ids_.size(); ++p) {
      const PromptInput& in = r_.prompts[p];
      std::string echo = in.is_text ? in.text : ctx_.tok.decode(in.ids);
      for (int i = 0; i < r_.params.n; ++i) {
        auto& c = choices_[p * r_.params.n + i];
        c.text = echo;
        if (r_.logprobs)
          for (int32_t t : prompt_ids_[p]) c.lps.add_prompt_token(ctx_.tok, t);
      }
    }
  }

  // Streaming: the echoed prompts first.
  std::string start_text() {
    std::string out;
    if (!r_.echo) return out;
    for (size_t i = 0; i < choices_.size(); ++i)
      out += sse_data(completion_chunk(id_, created_, ctx_.model_name, fingerprint_,
                                       static_cast<int>(i), choices_[i].text, "",
                                       take_lps(choices_[i]), r_.include_usage));
    return out;
  }

  std::string on_events(std::vector<StreamEvent>& events) {
    std::string out;
    for (auto& ev : events) {
      auto* c = choice(ev);
      if (!c) continue;
      const int index = static_cast<int>(c - choices_.data());
      add(*c, ev.out);
      if (!ev.out.text.empty() || !ev.out.logprobs.empty())
        out += sse_data(completion_chunk(id_, created_, ctx_.model_name, fingerprint_, index,
                                         ev.out.text, "", take_lps(*c), r_.include_usage));
      if (!ev.out.error.empty())
        out += sse_data(error_body("The engine failed the request.", "server_error"));
      if (ev.out.finish_reason == FinishReason::kAbort) {
        // OpenAI has no "abort" finish_reason: an error event instead (clients raise it).
        if (ev.out.error.empty()) out += sse_data(aborted_error_body());
      } else if (ev.out.finish_reason != FinishReason::kNone) {
        out += sse_data(completion_chunk(id_, created_, ctx_.model_name, fingerprint_, index, "",
                                         openai_finish_reason(ev.out.finish_reason), std::nullopt,
                                         r_.include_usage));
      }
    }
    return out;
  }

  std::string done_text(const RequestStream& stream) {
    std::string out;
    if (r_.include_usage)
      out += sse_data(usage_chunk(id_, created_, ctx_.model_name, fingerprint_, "text_completion",
                                  usage(stream)));
    return out + kSseDone;
  }

  void collect(std::vector<StreamEvent>& events) {
    for (auto& ev : events)
      if (auto* c = choice(ev)) add(*c, ev.out);
  }

  ordered_json body(const RequestStream& stream) {
    std::vector<CompletionChoiceResult> results;
    for (size_t i = 0; i < choices_.size(); ++i) {
      CompletionChoiceResult res;
      res.index = static_cast<int>(i);
      res.text = choices_[i].text;
      res.finish_reason = choices_[i].finish;
      if (r_.logprobs) res.logprobs = choices_[i].lps.json();
      results.push_back(std::move(res));
    }
    return completion_body(id_, created_, ctx_.model_name, fingerprint_, results, usage(stream));
  }

  const std::string& engine_error() const { return error_; }

 private:
  CompletionChoiceState* choice(const StreamEvent& ev) {
    if (ev.out.index < 0 || ev.out.index >= r_.params.n) return nullptr;
    size_t i = static_cast<size_t>(ev.prompt_index) * r_.params.n + ev.out.index;
    return i < choices_.size() ? &choices_[i] : nullptr;
  }

  void add(CompletionChoiceState& c, const Output& o) {
    c.text += o.text;
    if (r_.logprobs)
      for (const auto& lp : o.logprobs) c.lps.add(ctx_.tok, lp, *r_.logprobs);
    if (o.finish_reason != FinishReason::kNone) c.finish = openai_finish_reason(o.finish_reason);
    if (!o.error.empty()) error_ = o.error;
  }

  std::optional<ordered_json> take_lps(CompletionChoiceState& c) {
    if (!r_.logprobs) return std::nullopt;
    return c.lps.take_new();
  }

  Usage usage(const RequestStream& stream) const {
    StreamSummary s = stream.summary();
    return Usage{s.prompt_tokens, s.completion_tokens, s.cached_prompt_tokens};
  }

  HttpContext& ctx_;
  const CompletionRequest& r_;
  std::string id_;
  int64_t created_;
  std::string fingerprint_;
  std::vector<std::vector<int32_t>> prompt_ids_;
  std::vector<CompletionChoiceState> choices_;
  std::string error_;
};

std::vector<int32_t> encode_prompt(const HttpContext& ctx, const PromptInput& in, bool add_bos) {
  if (!in.is_text) return in.ids;
  std::vector<int32_t> ids;
  // Sentencepiece-style tokenizers add BOS themselves; byte-level Llama 3 needs it prepended.
  if (add_bos && ctx.tok.bos_id() >= 0 && !ctx.tok.adds_bos()) ids.push_back(ctx.tok.bos_id());
  auto body = ctx.tok.encode(in.text);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

}  // namespace

bool handle_completions(HttpContext& ctx, const HttpRequest& req, HttpResponse& res,
                        RequestLogEntry& log) {
  auto r = std::make_shared<CompletionRequest>(parse_completion_request(parse_body(req)));
  keep_schema_key_order(req.body, r->params, nlohmann::json::array());
  check_model(ctx, r->model);
  const std::string id = new_request_id("cmpl-");
  log.id = id;
  std::vector<std::vector<int32_t>> prompt_ids;
  std::vector<Request> reqs;
  for (size_t p = 0; p < r->prompts.size(); ++p) {
    auto ids = encode_prompt(ctx, r->prompts[p], r->add_special_tokens);
    if (ids.empty()) throw InvalidArgument("prompt", "the prompt is empty");
    for (int32_t t : ids)
      if (t >= ctx.tok.vocab_size())
        throw InvalidArgument("prompt", "token id " + std::to_string(t) +
                                            " is outside the vocabulary (size " +
                                            std::to_string(ctx.tok.vocab_size()) + ")");
    check_context_length(ctx, ids.size(), r->params.max_tokens, "prompt");
    Request er;
    er.id = r->prompts.size() == 1 ? id : id + "-" + std::to_string(p);
    er.prompt_ids = ids;
    er.params = r->params;
    er.cache_salt = r->cache_salt;
    prompt_ids.push_back(std::move(ids));
    reqs.push_back(std::move(er));
  }
  auto run = std::make_shared<CompletionRun>(ctx, *r, id, std::move(prompt_ids));
  auto stream = ctx.client.submit(std::move(reqs));
  return respond_with_run(ctx, res, r->stream, run, stream, log, r);
}

}  // namespace herd::server
