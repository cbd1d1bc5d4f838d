// An unhealthy engine (a failed step: a device fault) seen through gRPC and /metrics (issue 14
// item 5): new requests end UNAVAILABLE, and the metrics say the engine is unhealthy.
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

TEST(EngineHealthGrpc, UnhealthyEngineAnswersUnavailableAndMetricsSaySo) {
  FakeEngine engine;
  server::Metrics metrics("fake-model");
  server::EngineClient client(engine, metrics);
  server::ServerOptions opts;
  opts.grpc_port = 0;
  server::GrpcServer srv(client, opts, "fake-model");
  const int port = srv.start();
  auto stub = pb::Herd::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));

  auto generate = [&] {
    pb::GenerateRequest req;
    req.set_text("hi");
    req.mutable_params()->set_max_tokens(2);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    auto reader = stub->Generate(&ctx, req);
    pb::GenerateResponse r;
    while (reader->Read(&r)) {
    }
    return reader->Finish();
  };
  ASSERT_TRUE(generate().ok());
  EXPECT_NE(
      metrics.render(engine.stats()).find("herd_engine_healthy{model_name=\"fake-model\"} 1\n"),
      std::string::npos);

  engine.set_unhealthy("step 7 failed: CUDA error: an illegal memory access was encountered");
  grpc::Status s = generate();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_NE(s.error_message().find("illegal memory access"), std::string::npos)
      << s.error_message();
  const std::string m = metrics.render(engine.stats());
  EXPECT_NE(m.find("herd_engine_healthy{model_name=\"fake-model\"} 0\n"), std::string::npos) << m;
  EXPECT_NE(m.find("herd_nonfinite_logit_errors_total{model_name=\"fake-model\"} 0\n"),
            std::string::npos)
      << m;
  srv.shutdown(2s);
  engine.shutdown();
}

}  // namespace
}  // namespace herd::testing

#endif  // HERD_HAVE_GRPC
