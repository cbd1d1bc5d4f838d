// herd.v1.Herd/Score over a real loopback gRPC channel against a FakeEngine that is a reward
// model: text, token and chat inputs, the errors, and Generate refused on a reward model.
#ifdef HERD_HAVE_GRPC

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "herd/v1/herd.grpc.pb.h"
#include "server/engine_client.h"
#include "server/grpc_server.h"
#include "server/metrics.h"
#include "tests/server/fake_engine.h"

namespace herd::testing {
namespace {

using namespace std::chrono_literals;
namespace pb = ::herd::v1;

class GrpcScoreTest : public ::testing::Test {
 protected:
  void start(int labels) {
    FakeEngineOptions eo;
    eo.num_labels = labels;
    eo.max_model_len = 256;
    engine_ = std::make_unique<FakeEngine>(std::move(eo));
    metrics_ = std::make_unique<server::Metrics>("fake-model");
    client_ = std::make_unique<server::EngineClient>(*engine_, *metrics_);
    server::ServerOptions opts;
    opts.grpc_port = 0;
    server_ = std::make_unique<server::GrpcServer>(*client_, opts, "fake-model");
    const int port = server_->start();
    stub_ = pb::Herd::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                  grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_) server_->shutdown(2s);
    server_.reset();
    if (engine_) engine_->shutdown();
  }
  grpc::Status score(const pb::ScoreRequest& req, pb::ScoreResponse& res) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 20s);
    return stub_->Score(&ctx, req, &res);
  }

  std::unique_ptr<FakeEngine> engine_;
  std::unique_ptr<server::Metrics> metrics_;
  std::unique_ptr<server::EngineClient> client_;
  std::unique_ptr<server::GrpcServer> server_;
  std::unique_ptr<pb::Herd::Stub> stub_;
};

TEST_F(GrpcScoreTest, ScoresTextTokensAndChat) {
  start(2);
  pb::ScoreRequest req;
  req.set_text("Hi");
  pb::ScoreResponse res;
  grpc::Status st = score(req, res);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const std::vector<int32_t> ids = {FakeTokenizer::kBos, 'H', 'i'};
  EXPECT_EQ(engine_->received().at(0).prompt_ids, ids);
  EXPECT_EQ(std::vector<float>(res.scores().begin(), res.scores().end()), fake_scores(ids, 2));
  ASSERT_EQ(res.labels_size(), 2);
  EXPECT_EQ(res.labels(1), "LABEL_1");
  EXPECT_EQ(res.usage().prompt_tokens(), 3);

  pb::ScoreRequest tok;
  tok.mutable_token_ids()->add_ids(5);
  tok.mutable_token_ids()->add_ids(6);
  st = score(tok, res);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(std::vector<float>(res.scores().begin(), res.scores().end()), fake_scores({5, 6}, 2));

  pb::ScoreRequest chat;
  auto* m = chat.add_messages();
  m->set_role("user");
  m->set_content("x");
  st = score(chat, res);
  ASSERT_TRUE(st.ok()) << st.error_message();
  // Rendered with the template: starts with BOS, longer than the one content byte.
  const std::vector<int32_t> got = engine_->received().back().prompt_ids;
  ASSERT_GT(got.size(), 2u);
  EXPECT_EQ(got[0], FakeTokenizer::kBos);
}

TEST_F(GrpcScoreTest, BadInputsAreInvalidArgument) {
  start(1);
  pb::ScoreResponse res;
  pb::ScoreRequest none;
  EXPECT_EQ(score(none, res).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  pb::ScoreRequest both;
  both.set_text("x");
  both.add_messages()->set_role("user");
  EXPECT_EQ(score(both, res).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  pb::ScoreRequest too_long;
  too_long.set_text(std::string(300, 'a'));  // > max_model_len 256
  EXPECT_EQ(score(too_long, res).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  pb::ScoreRequest bad_role;
  bad_role.add_messages()->set_role("robot");
  EXPECT_EQ(score(bad_role, res).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(engine_->received().size(), 0u);
}

TEST_F(GrpcScoreTest, CausalModelRefusesScoreAndRewardModelRefusesGenerate) {
  start(0);
  pb::ScoreRequest req;
  req.set_text("x");
  pb::ScoreResponse res;
  EXPECT_EQ(score(req, res).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  TearDown();
  start(1);
  pb::GenerateRequest gen;
  gen.set_text("x");
  grpc::ClientContext ctx;
  auto reader = stub_->Generate(&ctx, gen);
  pb::GenerateResponse r;
  while (reader->Read(&r)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace herd::testing

#endif  // HERD_HAVE_GRPC
