// POST /v1/chat/completions: messages -> Llama 3.1 chat prompt -> engine; the reply streams
// back as OpenAI chat chunks or one chat.completion body. With tools offered, a reply that
// starts with '{' is held back until it finishes and then parsed for tool calls.
#include <cctype>

#include "engine/tokenizer/chat_format.h"
#include "server/http_context.h"
#include "server/openai_request.h"

namespace herd::server {

namespace {

// Per-choice state while the reply streams.
struct ChoiceState {
  bool deciding = true;    // tools offered and nothing but whitespace seen yet
  bool buffering = false;  // reply looks like a tool call: hold it until the end
  std::string pending;     // text held back (deciding or buffering)
  std::string text;        // everything (non-streaming body)
  std::vector<TokenLogprob> pending_lps;
  std::vector<TokenLogprob> lps;
  std::string finish;
  bool finished = false;
};

std::string first_non_space(const std::string& s) {
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) return std::string(1, c);
  return "";
}

class ChatRun {
 public:
  ChatRun(HttpContext& ctx, const ChatCompletionRequest& r, std::string id)
      : ctx_(ctx),
        r_(r),
        id_(std::move(id)),
        created_(unix_now()),
        fingerprint_(system_fingerprint(ctx.client.engine(), ctx.model_name)),
        choices_(r.params.n) {}

  std::string start_text() {
    std::string out;
    for (int i = 0; i < r_.params.n; ++i)
      out += sse_data(chunk(i, {{"role", "assistant"}, {"content", ""}}, "", std::nullopt));
    return out;
  }

  // Streaming: SSE text for a batch of events.
  std::string on_events(std::vector<StreamEvent>& events) {
    std::string out;
    for (auto& ev : events) {
      const Output& o = ev.out;
      if (o.index < 0 || o.index >= r_.params.n) continue;
      ChoiceState& c = choices_[o.index];
      c.pending += o.text;
      c.pending_lps.insert(c.pending_lps.end(), o.logprobs.begin(), o.logprobs.end());
      if (c.deciding && r_.parse_tool_calls) {
        std::string first = first_non_space(c.pending);
        if (!first.empty()) {
          c.deciding = false;
          c.buffering = first == "{";
        }
      } else {
        c.deciding = false;
      }
      if (!c.deciding && !c.buffering && !c.pending.empty()) out += content_chunk(o.index, c);
      if (!o.error.empty())
        out += sse_data(error_body("The engine failed the request.", "server_error"));
      if (o.finish_reason == FinishReason::kAbort) {
        // OpenAI has no "abort" finish_reason: the choice ends with an error event instead
        // (the official clients raise it), and no finish chunk claims it finished.
        if (!c.pending.empty() && !c.buffering) out += content_chunk(o.index, c);
        if (o.error.empty()) out += sse_data(aborted_error_body());
        c.finished = true;
      } else if (o.finish_reason != FinishReason::kNone) {
        out += finish_choice(o.index, c, o.finish_reason);
      }
    }
    return out;
  }

  std::string done_text(const RequestStream& stream) {
    std::string out;
    if (r_.include_usage) {
      StreamSummary s = stream.summary();
      Usage u{s.prompt_tokens, s.completion_tokens, s.cached_prompt_tokens};
      out += sse_data(
          usage_chunk(id_, created_, ctx_.model_name, fingerprint_, "chat.completion.chunk", u));
    }
    return out + kSseDone;
  }

  // Non-streaming: accumulate.
  void collect(std::vector<StreamEvent>& events) {
    for (auto& ev : events) {
      const Output& o = ev.out;
      if (o.index < 0 || o.index >= r_.params.n) continue;
      ChoiceState& c = choices_[o.index];
      c.text += o.text;
      c.lps.insert(c.lps.end(), o.logprobs.begin(), o.logprobs.end());
      if (o.finish_reason != FinishReason::kNone) c.finish = openai_finish_reason(o.finish_reason);
      if (!o.error.empty()) error_ = o.error;
    }
  }

  ordered_json body(const RequestStream& stream) {
    std::vector<ChatChoiceResult> results;
    for (int i = 0; i < r_.params.n; ++i) {
      ChoiceState& c = choices_[i];
      ChatChoiceResult res;
      res.index = i;
      res.content = c.text;
      res.finish_reason = c.finish;
      if (r_.parse_tool_calls && first_non_space(c.text) == "{" && c.finish == "stop") {
        if (auto calls = parse_llama31_tool_calls(c.text, id_ + "-" + std::to_string(i))) {
          res.tool_calls = *calls;
          res.finish_reason = "tool_calls";
        }
      }
      if (r_.logprobs)
        res.logprobs =
            ordered_json{{"content", chat_logprobs_entries(ctx_.tok, c.lps, r_.top_logprobs)}};
      results.push_back(std::move(res));
    }
    StreamSummary s = stream.summary();
    return chat_completion_body(
        id_, created_, ctx_.model_name, fingerprint_, results,
        Usage{s.prompt_tokens, s.completion_tokens, s.cached_prompt_tokens});
  }

  const std::string& engine_error() const { return error_; }

 private:
  ordered_json chunk(int index, ordered_json delta, const std::string& finish,
                     std::optional<ordered_json> logprobs) {
    return chat_chunk(id_, created_, ctx_.model_name, fingerprint_, index, std::move(delta), finish,
                      std::move(logprobs), r_.include_usage);
  }

  std::optional<ordered_json> take_logprobs(ChoiceState& c) {
    if (!r_.logprobs) {
      c.pending_lps.clear();
      return std::nullopt;
    }
    ordered_json j{{"content", chat_logprobs_entries(ctx_.tok, c.pending_lps, r_.top_logprobs)}};
    c.pending_lps.clear();
    return j;
  }

  std::string content_chunk(int index, ChoiceState& c) {
    std::string text = std::move(c.pending);
    c.pending.clear();
    return sse_data(chunk(index, {{"content", text}}, "", take_logprobs(c)));
  }

  std::string finish_choice(int index, ChoiceState& c, FinishReason reason) {
    std::string out;
    std::string finish = openai_finish_reason(reason);
    if (c.buffering && reason == FinishReason::kStop) {
      auto calls = parse_llama31_tool_calls(c.pending, id_ + "-" + std::to_string(index));
      if (calls) {
        ordered_json delta{{"tool_calls", tool_calls_json(*calls, true)}};
        out += sse_data(chunk(index, std::move(delta), "", take_logprobs(c)));
        c.pending.clear();
        finish = "tool_calls";
      }
    }
    if (!c.pending.empty()) out += content_chunk(index, c);
    out += sse_data(chunk(index, ordered_json::object(), finish, std::nullopt));
    c.finished = true;
    return out;
  }

  HttpContext& ctx_;
  const ChatCompletionRequest& r_;
  std::string id_;
  int64_t created_;
  std::string fingerprint_;
  std::vector<ChoiceState> choices_;
  std::string error_;
};

}  // namespace

bool handle_chat_completions(HttpContext& ctx, const HttpRequest& req, HttpResponse& res,
                             RequestLogEntry& log) {
  auto r = std::make_shared<ChatCompletionRequest>(parse_chat_request(parse_body(req)));
  check_model(ctx, r->model);
  keep_schema_key_order(req.body, r->params, r->tools);
  ChatFormatOptions fo;
  fo.tools = r->tools;
  fo.add_generation_prompt = r->add_generation_prompt;
  Request er;
  er.id = new_request_id("chatcmpl-");
  log.id = er.id;
  er.prompt_ids = encode_llama31_chat(ctx.tok, r->messages, fo);
  check_context_length(ctx, er.prompt_ids.size(), r->params.max_tokens, "messages");
  er.params = r->params;
  er.cache_salt = r->cache_salt;
  auto run = std::make_shared<ChatRun>(ctx, *r, er.id);
  auto stream = ctx.client.submit({std::move(er)});
  return respond_with_run(ctx, res, r->stream, run, stream, log, r);
}

}  // namespace herd::server
