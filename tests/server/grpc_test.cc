// herd.v1.Herd over a real loopback gRPC channel against the FakeEngine, plus the standard
// health service.
#ifdef HERD_HAVE_GRPC

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "herd/v1/herd.grpc.pb.h"
#include "server/engine_client.h"
#include "server/grpc_server.h"
#include "server/metrics.h"
#include "tests/server/fake_engine.h"

namespace herd::testing {
namespace {

using namespace std::chrono_literals;
namespace pb = ::herd::v1;

class GrpcTest : public ::testing::Test {
 protected:
  void start(server::ServerOptions opts = {}, FakeEngineOptions eopts = {}) {
    engine_ = std::make_unique<FakeEngine>(std::move(eopts));
    metrics_ = std::make_unique<server::Metrics>("fake-model");
    client_ = std::make_unique<server::EngineClient>(*engine_, *metrics_);
    opts_ = opts;
    opts_.grpc_port = 0;
    server_ = std::make_unique<server::GrpcServer>(*client_, opts_, "fake-model");
    int port = server_->start();
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials());
    stub_ = pb::Herd::NewStub(channel_);
  }
  void TearDown() override {
    if (server_) server_->shutdown(2s);
    server_.reset();
    if (engine_) engine_->shutdown();
  }

  // Runs a Generate call to the end; returns the responses and the status.
  grpc::Status generate(const pb::GenerateRequest& req, std::vector<pb::GenerateResponse>& out,
                        grpc::ClientContext& ctx) {
    auto reader = stub_->Generate(&ctx, req);
    pb::GenerateResponse r;
    while (reader->Read(&r)) out.push_back(r);
    return reader->Finish();
  }

  template <class F>
  bool eventually(F pred) {
    auto until = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < until) {
      if (pred()) return true;
      std::this_thread::sleep_for(5ms);
    }
    return pred();
  }

  server::ServerOptions opts_;
  std::unique_ptr<FakeEngine> engine_;
  std::unique_ptr<server::Metrics> metrics_;
  std::unique_ptr<server::EngineClient> client_;
  std::unique_ptr<server::GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::Herd::Stub> stub_;
};

TEST_F(GrpcTest, GenerateTextStreamsDeltas) {
  start();
  pb::GenerateRequest req;
  req.set_text("Hi");
  std::vector<pb::GenerateResponse> out;
  grpc::ClientContext ctx;
  ASSERT_TRUE(generate(req, out, ctx).ok());
  std::string text;
  for (const auto& r : out) text += r.text();
  EXPECT_EQ(text, "Hello from sample 0!");
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back().finish_reason(), "stop");
  ASSERT_TRUE(out.back().has_usage());
  EXPECT_EQ(out.back().usage().prompt_tokens(), 3);  // BOS + "Hi"
  EXPECT_EQ(out.back().usage().completion_tokens(), 20);
  EXPECT_EQ(engine_->received().at(0).prompt_ids,
            (std::vector<int32_t>{FakeTokenizer::kBos, 'H', 'i'}));
}

TEST_F(GrpcTest, GenerateTokenIdsWithParams) {
  start();
  pb::GenerateRequest req;
  for (int id : {5, 6, 7}) req.mutable_token_ids()->add_ids(id);
  req.mutable_params()->set_max_tokens(4);
  req.mutable_params()->set_n(2);
  req.mutable_params()->set_logprobs(1);
  req.mutable_params()->set_temperature(0.0);
  std::vector<pb::GenerateResponse> out;
  grpc::ClientContext ctx;
  ASSERT_TRUE(generate(req, out, ctx).ok());
  std::vector<std::string> text(2);
  int finishes = 0;
  for (const auto& r : out) {
    text[r.index()] += r.text();
    if (!r.token_ids().empty()) {
      EXPECT_EQ(r.logprobs_size(), r.token_ids_size());
      EXPECT_EQ(r.logprobs(0).top_size(), 1);
    }
    if (r.finish_reason() == "length") ++finishes;
  }
  EXPECT_EQ(text[0], "Hell");
  EXPECT_EQ(text[1], "Hell");
  EXPECT_EQ(finishes, 2);
  auto p = engine_->received().at(0);
  EXPECT_EQ(p.prompt_ids, (std::vector<int32_t>{5, 6, 7}));
  EXPECT_DOUBLE_EQ(p.params.temperature, 0.0);
}

TEST_F(GrpcTest, ChatParsesToolCalls) {
  start();
  engine_->set_reply([](const Request&, int) {
    return std::string(R"({"name": "lookup", "parameters": {"q": "herd"}})");
  });
  pb::ChatRequest req;
  auto* m = req.add_messages();
  m->set_role("user");
  m->set_content("search please");
  req.set_tools_json(
      R"([{"type":"function","function":{"name":"lookup","parameters":{"type":"object"}}}])");
  grpc::ClientContext ctx;
  auto reader = stub_->Chat(&ctx, req);
  pb::GenerateResponse r, last;
  while (reader->Read(&r)) last = r;
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(last.finish_reason(), "tool_calls");
  ASSERT_EQ(last.tool_calls_size(), 1);
  EXPECT_EQ(last.tool_calls(0).name(), "lookup");
  EXPECT_EQ(nlohmann::json::parse(last.tool_calls(0).arguments()), nlohmann::json({{"q", "herd"}}));
  EXPECT_EQ(last.tool_calls(0).id().rfind("call_", 0), 0u);
}

TEST_F(GrpcTest, TokenizeDetokenizeModelInfo) {
  start();
  pb::TokenizeRequest treq;
  treq.set_text("ab");
  pb::TokenizeResponse tres;
  grpc::ClientContext c1;
  ASSERT_TRUE(stub_->Tokenize(&c1, treq, &tres).ok());
  EXPECT_EQ(std::vector<int32_t>(tres.ids().begin(), tres.ids().end()),
            (std::vector<int32_t>{FakeTokenizer::kBos, 'a', 'b'}));
  pb::DetokenizeRequest dreq;
  dreq.add_ids('a');
  dreq.add_ids('b');
  pb::DetokenizeResponse dres;
  grpc::ClientContext c2;
  ASSERT_TRUE(stub_->Detokenize(&c2, dreq, &dres).ok());
  EXPECT_EQ(dres.text(), "ab");
  pb::ModelInfoResponse info;
  grpc::ClientContext c3;
  ASSERT_TRUE(stub_->ModelInfo(&c3, pb::ModelInfoRequest(), &info).ok());
  EXPECT_EQ(info.model_name(), "fake-model");
  EXPECT_EQ(info.max_model_len(), 4096);
  EXPECT_EQ(info.vocab_size(), FakeTokenizer().vocab_size());
  dreq.add_ids(1 << 20);
  grpc::ClientContext c4;
  EXPECT_EQ(stub_->Detokenize(&c4, dreq, &dres).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(GrpcTest, ErrorsMapToStatusCodes) {
  FakeEngineOptions eo;
  eo.max_waiting = 0;
  start({}, eo);
  pb::GenerateRequest req;
  req.set_text("x");
  std::vector<pb::GenerateResponse> out;
  grpc::ClientContext c1;
  EXPECT_EQ(generate(req, out, c1).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  req.mutable_params()->set_temperature(-1.0);  // rejected by the engine's validation
  grpc::ClientContext c2;
  auto st = generate(req, out, c2);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("temperature"), std::string::npos) << st.error_message();
}

TEST_F(GrpcTest, ApiKeyViaMetadata) {
  server::ServerOptions o;
  o.api_key = "k";
  start(o);
  pb::ModelInfoResponse info;
  grpc::ClientContext c1;
  EXPECT_EQ(stub_->ModelInfo(&c1, pb::ModelInfoRequest(), &info).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext c2;
  c2.AddMetadata("authorization", "Bearer k");
  EXPECT_TRUE(stub_->ModelInfo(&c2, pb::ModelInfoRequest(), &info).ok());
}

TEST_F(GrpcTest, DeadlineAbortsEngineRequest) {
  FakeEngineOptions eo;
  eo.token_delay = 1ms;
  eo.reply = [](const Request&, int) { return std::string(1000000, 'z'); };
  start({}, eo);
  pb::GenerateRequest req;
  req.set_text("x");
  std::vector<pb::GenerateResponse> out;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 300ms);
  EXPECT_EQ(generate(req, out, ctx).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(eventually([&] { return engine_->aborted().size() == 1; }));
  EXPECT_TRUE(eventually([&] { return client_->live() == 0; }));
}

TEST_F(GrpcTest, ClientCancelAbortsEngineRequest) {
  FakeEngineOptions eo;
  eo.token_delay = 1ms;
  eo.reply = [](const Request&, int) { return std::string(1000000, 'z'); };
  start({}, eo);
  pb::GenerateRequest req;
  req.set_text("x");
  grpc::ClientContext ctx;
  auto reader = stub_->Generate(&ctx, req);
  pb::GenerateResponse r;
  ASSERT_TRUE(reader->Read(&r));
  ctx.TryCancel();
  while (reader->Read(&r)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(eventually([&] { return engine_->aborted().size() == 1; }));
}

TEST_F(GrpcTest, StandardHealthService) {
  server::ServerOptions o;
  o.api_key = "k";  // health stays open
  start(o);
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse res;
  grpc::ClientContext ctx;
  ASSERT_TRUE(health->Check(&ctx, req, &res).ok());
  EXPECT_EQ(res.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

}  // namespace
}  // namespace herd::testing

#endif  // HERD_HAVE_GRPC
