// herd.v1.Herd handlers. Streaming calls pump a RequestStream like the SSE path does, checking
// for cancellation (client cancel or deadline) between events so that the engine request is
// aborted promptly.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <atomic>
#include <nlohmann/json.hpp>

#include "engine/common/error.h"
#include "engine/model/config.h"
#include "engine/tokenizer/chat_format.h"
#include "engine/tokenizer/tokenizer.h"
#include "herd/v1/herd.grpc.pb.h"
#include "server/auth.h"
#include "server/grpc_server.h"
#include "server/openai_request.h"
#include "server/openai_response.h"
#include "server/untrusted_json.h"

namespace herd::server {

namespace {

namespace pb = ::herd::v1;
using Clock = std::chrono::steady_clock;

// After the drain deadline: how long a cut stream waits for the engine's final outputs before
// it writes its own last message, and how long gRPC lets handlers write it before it cancels
// every call that is left.
constexpr auto kCutOutputWait = std::chrono::milliseconds(500);
constexpr auto kCutGrace = std::chrono::milliseconds(1000);

SamplingParams to_params(const pb::SamplingParams& p) {
  SamplingParams s;
  if (p.has_n()) s.n = p.n();
  if (p.has_temperature()) s.temperature = p.temperature();
  if (p.has_top_p()) s.top_p = p.top_p();
  if (p.has_top_k()) s.top_k = p.top_k();
  if (p.has_min_p()) s.min_p = p.min_p();
  if (p.has_presence_penalty()) s.presence_penalty = p.presence_penalty();
  if (p.has_frequency_penalty()) s.frequency_penalty = p.frequency_penalty();
  if (p.has_repetition_penalty()) s.repetition_penalty = p.repetition_penalty();
  for (const auto& [id, bias] : p.logit_bias()) s.logit_bias.emplace_back(id, bias);
  if (p.has_seed()) s.seed = p.seed();
  if (p.has_logprobs()) s.logprobs = p.logprobs();
  s.stop.assign(p.stop().begin(), p.stop().end());
  s.stop_token_ids.assign(p.stop_token_ids().begin(), p.stop_token_ids().end());
  s.ignore_eos = p.ignore_eos();
  if (p.has_max_tokens()) s.max_tokens = p.max_tokens();
  s.min_tokens = p.min_tokens();
  if (p.has_skip_special_tokens()) s.skip_special_tokens = p.skip_special_tokens();
  if (p.has_json_schema() && p.json_object())
    throw InvalidArgument("params.json_schema", "set at most one of json_schema and json_object");
  if (p.has_json_schema()) {
    s.response_format.type = ResponseFormat::Type::kJsonSchema;
    s.response_format.schema = p.json_schema();
    s.response_format.param = "params.json_schema";
  } else if (p.json_object()) {
    s.response_format.type = ResponseFormat::Type::kJsonObject;
  }
  return s;
}

void fill_response(const Output& o, pb::GenerateResponse& r) {
  r.set_request_id(o.request_id);
  r.set_index(o.index);
  r.set_text(o.text);
  for (int32_t t : o.token_ids) r.add_token_ids(t);
  for (const auto& lp : o.logprobs) {
    auto* l = r.add_logprobs();
    l->set_id(lp.id);
    l->set_logprob(lp.logprob);
    for (const auto& [id, v] : lp.top) {
      auto* t = l->add_top();
      t->set_id(id);
      t->set_logprob(v);
    }
  }
  r.set_finish_reason(openai_finish_reason(o.finish_reason));
  r.set_stop_reason(o.stop_reason);
  if (o.request_finished) {
    auto* u = r.mutable_usage();
    u->set_prompt_tokens(o.usage.prompt_tokens);
    u->set_completion_tokens(o.usage.completion_tokens);
    u->set_cached_prompt_tokens(o.usage.cached_prompt_tokens);
  }
}

class HerdService final : public pb::Herd::Service {
 public:
  HerdService(EngineClient& client, const ServerOptions& opts, std::string model_name)
      : client_(client), opts_(opts), model_name_(std::move(model_name)) {}

  grpc::Status Generate(grpc::ServerContext* ctx, const pb::GenerateRequest* req,
                        grpc::ServerWriter<pb::GenerateResponse>* writer) override {
    return guarded(ctx, [&] {
      Request er;
      er.id = new_request_id("grpc-");
      if (req->has_token_ids()) {
        er.prompt_ids.assign(req->token_ids().ids().begin(), req->token_ids().ids().end());
      } else {
        const Tokenizer& tok = client_.engine().tokenizer();
        if (req->add_bos() || !req->has_add_bos())
          if (tok.bos_id() >= 0 && !tok.adds_bos()) er.prompt_ids.push_back(tok.bos_id());
        auto ids = tok.encode(req->text());
        er.prompt_ids.insert(er.prompt_ids.end(), ids.begin(), ids.end());
      }
      er.params = to_params(req->params());
      if (req->has_cache_salt()) {
        validate_cache_salt(req->cache_salt(), "cache_salt");
        er.cache_salt = req->cache_salt();
      }
      return run_stream(ctx, std::move(er), writer, false);
    });
  }

  grpc::Status Chat(grpc::ServerContext* ctx, const pb::ChatRequest* req,
                    grpc::ServerWriter<pb::GenerateResponse>* writer) override {
    return guarded(ctx, [&] {
      std::vector<ChatMessage> msgs;
      if (req->messages_size() > static_cast<int>(kMaxChatMessages))
        throw InvalidArgument("messages", "'messages' may hold at most " +
                                              std::to_string(kMaxChatMessages) + " messages");
      for (const auto& m : req->messages()) {
        ChatMessage cm{m.role(), m.content(), {}, m.tool_call_id()};
        for (const auto& c : m.tool_calls())
          cm.tool_calls.push_back({c.id(), c.name(), c.arguments()});
        msgs.push_back(std::move(cm));
      }
      // Roles (never spliced unchecked into a header) and tool-call arguments (depth-bounded).
      validate_chat_messages(msgs, "messages");
      ChatFormatOptions fo;
      if (!req->tools_json().empty()) {
        fo.tools = validate_tools(
            parse_untrusted_json(req->tools_json(), "tools_json", "'tools_json'"), "tools_json");
      }
      Request er;
      er.id = new_request_id("grpc-chat-");
      er.params = to_params(req->params());
      const std::string& choice = req->tool_choice();
      if (!choice.empty() && choice != "auto" && choice != "none" && choice != "required")
        throw InvalidArgument("tool_choice", "'tool_choice' must be auto, none or required");
      if (choice == "required" || !req->tool_choice_function().empty()) {
        nlohmann::json forced = nlohmann::json::array();
        for (const auto& t : fo.tools)
          if (req->tool_choice_function().empty() ||
              t["function"]["name"] == req->tool_choice_function())
            forced.push_back(t);
        if (forced.empty())
          throw InvalidArgument("tool_choice", "the forced tool call names no tool in tools_json");
        if (er.params.response_format.type != ResponseFormat::Type::kText)
          throw InvalidArgument("params.json_schema",
                                "a JSON format cannot be combined with a forced tool call");
        if (!req->tool_choice_function().empty()) fo.tools = forced;
        // `forced` came from a json parse, which sorts keys: the schema is built from the
        // tools re-read in their declared key order, as the HTTP route does from its body
        // (tools_json was parsed, depth-bounded, above: this parse cannot fail or nest deeper).
        const auto declared = nlohmann::ordered_json::parse(req->tools_json(), nullptr,
                                                            /*allow_exceptions=*/false);
        const auto kept = tools_in_declared_order(declared, forced);
        er.params.response_format =
            kept ? tool_call_format(*kept, "tools_json") : tool_call_format(forced, "tools_json");
      }
      if (choice == "none") fo.tools = nlohmann::json::array();
      // The prompt is rendered after tool_choice: "none" offers no tools, a named function
      // offers only that one (as the HTTP route does).
      er.prompt_ids = encode_llama31_chat(client_.engine().tokenizer(), msgs, fo);
      if (req->has_cache_salt()) {
        validate_cache_salt(req->cache_salt(), "cache_salt");
        er.cache_salt = req->cache_salt();
      }
      return run_stream(ctx, std::move(er), writer, !fo.tools.empty());
    });
  }

  grpc::Status Tokenize(grpc::ServerContext* ctx, const pb::TokenizeRequest* req,
                        pb::TokenizeResponse* res) override {
    return guarded(ctx, [&] {
      const Tokenizer& tok = client_.engine().tokenizer();
      if ((req->add_bos() || !req->has_add_bos()) && tok.bos_id() >= 0 && !tok.adds_bos())
        res->add_ids(tok.bos_id());
      for (int32_t id : tok.encode(req->text(), req->allow_special())) res->add_ids(id);
      res->set_max_model_len(client_.engine().max_model_len());
      return grpc::Status::OK;
    });
  }

  grpc::Status Detokenize(grpc::ServerContext* ctx, const pb::DetokenizeRequest* req,
                          pb::DetokenizeResponse* res) override {
    return guarded(ctx, [&] {
      const Tokenizer& tok = client_.engine().tokenizer();
      std::vector<int32_t> ids(req->ids().begin(), req->ids().end());
      for (int32_t id : ids)
        if (id < 0 || id >= tok.vocab_size())
          throw InvalidArgument("ids",
                                "token id " + std::to_string(id) + " is outside the vocabulary");
      res->set_text(tok.decode(ids));
      return grpc::Status::OK;
    });
  }

  grpc::Status ModelInfo(grpc::ServerContext* ctx, const pb::ModelInfoRequest*,
                         pb::ModelInfoResponse* res) override {
    return guarded(ctx, [&] {
      const Engine& e = client_.engine();
      const ModelConfig& c = e.model_config();
      res->set_model_name(model_name_);
      res->set_max_model_len(e.max_model_len());
      res->set_vocab_size(e.tokenizer().vocab_size());
      res->set_bos_id(e.tokenizer().bos_id());
      res->set_eos_id(e.tokenizer().eos_id());
      res->set_num_hidden_layers(c.num_hidden_layers);
      res->set_hidden_size(c.hidden_size);
      res->set_num_attention_heads(c.num_attention_heads);
      res->set_num_key_value_heads(c.num_key_value_heads);
      return grpc::Status::OK;
    });
  }

  grpc::Status Score(grpc::ServerContext* ctx, const pb::ScoreRequest* req,
                     pb::ScoreResponse* res) override {
    return guarded(ctx, [&] {
      const ModelConfig& c = client_.engine().model_config();
      if (!c.is_reward_model())
        throw InvalidArgument("model", "the model is not a reward model: Score needs one");
      const Tokenizer& tok = client_.engine().tokenizer();
      Request er;
      er.id = new_request_id("grpc-score-");
      const bool chat = req->messages_size() > 0;
      if (chat == (req->input_case() != pb::ScoreRequest::INPUT_NOT_SET))
        throw InvalidArgument("input", "give exactly one of text, token_ids and messages");
      if (chat) {
        if (req->messages_size() > static_cast<int>(kMaxChatMessages))
          throw InvalidArgument("messages", "'messages' may hold at most " +
                                                std::to_string(kMaxChatMessages) + " messages");
        std::vector<ChatMessage> msgs;
        for (const auto& m : req->messages()) {
          ChatMessage cm{m.role(), m.content(), {}, m.tool_call_id()};
          for (const auto& t : m.tool_calls())
            cm.tool_calls.push_back({t.id(), t.name(), t.arguments()});
          msgs.push_back(std::move(cm));
        }
        validate_chat_messages(msgs, "messages");
        ChatFormatOptions fo;
        fo.add_generation_prompt = false;
        er.prompt_ids = encode_llama31_chat(tok, msgs, fo);
      } else if (req->has_token_ids()) {
        er.prompt_ids.assign(req->token_ids().ids().begin(), req->token_ids().ids().end());
      } else {
        if ((req->add_bos() || !req->has_add_bos()) && tok.bos_id() >= 0 && !tok.adds_bos())
          er.prompt_ids.push_back(tok.bos_id());
        auto ids = tok.encode(req->text());
        er.prompt_ids.insert(er.prompt_ids.end(), ids.begin(), ids.end());
      }
      if (er.prompt_ids.empty()) throw InvalidArgument("input", "the input is empty");
      if (static_cast<int64_t>(er.prompt_ids.size()) > client_.engine().max_model_len())
        throw InvalidArgument("input", "the input (" + std::to_string(er.prompt_ids.size()) +
                                           " tokens) exceeds the context length of " +
                                           std::to_string(client_.engine().max_model_len()));
      if (req->has_cache_salt()) {
        validate_cache_salt(req->cache_salt(), "cache_salt");
        er.cache_salt = req->cache_salt();
      }
      const std::string id = er.id;
      auto stream = client_.submit({std::move(er)});
      std::vector<float> scores;
      std::vector<StreamEvent> events;
      for (;;) {
        if (ctx->IsCancelled()) {
          client_.abort(*stream);
          client_.release(*stream);
          return grpc::Status{grpc::StatusCode::CANCELLED, "cancelled"};
        }
        events.clear();
        const auto w = stream->next(events, std::chrono::milliseconds(50));
        for (const auto& ev : events)
          if (!ev.out.scores.empty()) scores = ev.out.scores;
        if (w == RequestStream::Wait::kDone) break;
      }
      client_.release(*stream);
      const StreamSummary s = stream->summary();
      if (!s.error.empty())
        return grpc::Status{grpc::StatusCode::INTERNAL, "the engine failed the request"};
      if (scores.empty())
        return grpc::Status{grpc::StatusCode::UNAVAILABLE,
                            "the request was aborted before it finished"};
      res->set_request_id(id);
      for (float v : scores) res->add_scores(v);
      for (const std::string& l : c.id2label) res->add_labels(l);
      res->mutable_usage()->set_prompt_tokens(s.prompt_tokens);
      res->mutable_usage()->set_cached_prompt_tokens(s.cached_prompt_tokens);
      return grpc::Status::OK;
    });
  }

 private:
  // Auth, then the handler; exceptions become gRPC status codes (no internals in messages).
  template <class F>
  grpc::Status guarded(grpc::ServerContext* ctx, F&& fn) {
    if (!opts_.api_key.empty()) {
      auto md = ctx->client_metadata();
      auto it = md.find("authorization");
      std::string_view v = it == md.end() ? std::string_view()
                                          : std::string_view(it->second.data(), it->second.size());
      if (!bearer_matches(v, opts_.api_key))
        return {grpc::StatusCode::UNAUTHENTICATED,
                "invalid or missing API key (authorization: Bearer KEY)"};
    }
    try {
      return fn();
    } catch (const InvalidArgument& e) {
      return {grpc::StatusCode::INVALID_ARGUMENT,
              e.param().empty() ? e.what() : e.param() + ": " + e.what()};
    } catch (const QueueFull&) {
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, "the server is at capacity; retry later"};
    } catch (const EngineUnavailable& e) {
      // The engine failed a step (a device fault): the process drains and exits for a restart.
      return {grpc::StatusCode::UNAVAILABLE, std::string("the engine is unavailable: ") + e.what()};
    } catch (const std::exception& e) {
      std::fprintf(stderr, "herd grpc: internal error: %s\n", e.what());
      return {grpc::StatusCode::INTERNAL, "internal server error"};
    }
  }

  grpc::Status run_stream(grpc::ServerContext* ctx, Request er,
                          grpc::ServerWriter<pb::GenerateResponse>* writer, bool parse_tools) {
    if (client_.engine().model_config().is_reward_model())
      throw InvalidArgument("model",
                            "the model is a reward model: it scores (Score) and does not "
                            "generate");
    const int max_len = client_.engine().max_model_len();
    const size_t plen = er.prompt_ids.size();
    if (plen == 0) throw InvalidArgument("prompt", "the prompt is empty");
    if (static_cast<int64_t>(plen) + er.params.max_tokens.value_or(1) > max_len)
      throw InvalidArgument("prompt",
                            "the prompt (" + std::to_string(plen) +
                                " tokens) plus max_tokens exceeds the context length of " +
                                std::to_string(max_len) + " tokens");
    const int n = er.params.n;
    const std::string id = er.id;
    auto stream = client_.submit({std::move(er)});
    std::vector<std::string> texts(parse_tools ? n : 0);
    std::vector<bool> finished(n > 0 ? n : 0, false);
    bool aborted = false;  // some sample finished "abort"
    bool cut = false;      // the drain deadline passed: aborted, waiting for the last outputs
    Clock::time_point give_up{};
    std::vector<StreamEvent> events;
    for (;;) {
      if (ctx->IsCancelled()) {  // client cancelled, the deadline passed, or a forced shutdown
        client_.abort(*stream);
        client_.release(*stream);
        return {grpc::StatusCode::CANCELLED, "cancelled"};
      }
      if (!cut && Clock::now() >= cut_at()) {
        // Shutdown drain deadline: abort, and let the engine's final outputs (finish_reason
        // "abort", usage) reach the client before the call ends.
        cut = true;
        give_up = Clock::now() + kCutOutputWait;
        client_.abort(*stream);
      }
      if (cut && Clock::now() >= give_up) break;  // the engine did not answer in time
      events.clear();
      auto w = stream->next(events, std::chrono::milliseconds(50));
      if (w == RequestStream::Wait::kDone) break;
      for (const auto& ev : events) {
        pb::GenerateResponse r;
        fill_response(ev.out, r);
        const bool in_range = ev.out.index >= 0 && ev.out.index < n;
        if (in_range && ev.out.finish_reason != FinishReason::kNone) finished[ev.out.index] = true;
        if (ev.out.finish_reason == FinishReason::kAbort) aborted = true;
        if (parse_tools && in_range) {
          texts[ev.out.index] += ev.out.text;
          if (ev.out.finish_reason == FinishReason::kStop) {
            if (auto calls = parse_llama31_tool_calls(texts[ev.out.index],
                                                      id + "-" + std::to_string(ev.out.index))) {
              for (const auto& c : *calls) {
                auto* t = r.add_tool_calls();
                t->set_id(c.id);
                t->set_name(c.name);
                t->set_arguments(c.arguments);
              }
              r.set_finish_reason("tool_calls");
            }
          }
        }
        if (!writer->Write(r)) {
          client_.abort(*stream);
          client_.release(*stream);
          return {grpc::StatusCode::CANCELLED, "the client went away"};
        }
      }
    }
    client_.release(*stream);
    // Any abort during a drain is the shutdown's (the deadline, or a second signal).
    const bool shutting_down = draining() || cut;
    if (cut) {
      // Samples the engine did not finish in time still get a last message saying so.
      for (int i = 0; i < n; ++i) {
        if (finished[i]) continue;
        pb::GenerateResponse r;
        r.set_request_id(id);
        r.set_index(i);
        r.set_finish_reason(openai_finish_reason(FinishReason::kAbort));
        writer->Write(r);
        aborted = true;
      }
    }
    StreamSummary s = stream->summary();
    if (!s.error.empty()) return {grpc::StatusCode::INTERNAL, "the engine failed the request"};
    if (aborted && shutting_down)
      return {grpc::StatusCode::UNAVAILABLE,
              "the server is shutting down and aborted the request (drain deadline or a "
              "second signal; its last message has finish_reason \"abort\"); retry on "
              "another server"};
    return grpc::Status::OK;
  }

  // The drain deadline: a stream still running at it is cut (see run_stream).
  Clock::time_point cut_at() const {
    return Clock::time_point(Clock::duration(cut_at_.load(std::memory_order_relaxed)));
  }
  bool draining() const { return cut_at() != Clock::time_point::max(); }

  EngineClient& client_;
  const ServerOptions& opts_;
  std::string model_name_;
  std::atomic<Clock::rep> cut_at_{Clock::time_point::max().time_since_epoch().count()};

 public:
  void begin_drain(Clock::time_point cut_at) {
    cut_at_.store(cut_at.time_since_epoch().count(), std::memory_order_relaxed);
  }
};

}  // namespace

GrpcServer::GrpcServer(EngineClient& client, const ServerOptions& opts, std::string model_name)
    : client_(client), opts_(opts), model_name_(std::move(model_name)) {}

GrpcServer::~GrpcServer() { shutdown(std::chrono::milliseconds(0)); }

int GrpcServer::start() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  service_ = std::make_unique<HerdService>(client_, opts_, model_name_);
  grpc::ServerBuilder b;
  int port = -1;
  b.AddListeningPort(opts_.host + ":" + std::to_string(opts_.grpc_port),
                     grpc::InsecureServerCredentials(), &port);
  b.RegisterService(service_.get());
  server_ = b.BuildAndStart();
  if (!server_ || port <= 0)
    throw Error("cannot listen for gRPC on " + opts_.host + ":" + std::to_string(opts_.grpc_port));
  return port;
}

void GrpcServer::shutdown(std::chrono::milliseconds deadline) {
  if (!server_) return;
  if (auto* health = server_->GetHealthCheckService()) health->Shutdown();
  // Streams still running at the deadline are cut by their handlers, which send a last message
  // (finish_reason "abort") and end UNAVAILABLE; gRPC cancels what is left after a grace.
  static_cast<HerdService*>(service_.get())->begin_drain(Clock::now() + deadline);
  server_->Shutdown(std::chrono::system_clock::now() + deadline + kCutGrace);
  server_->Wait();
  server_.reset();
}

}  // namespace herd::server
