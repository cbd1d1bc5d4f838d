// An unhealthy engine (a failed step: a device fault) seen through HTTP (issue 14 item 5):
// /health answers 503 with the reason, new requests get 503 + Retry-After naming the engine.
#include "tests/server/server_fixture.h"

namespace herd::testing {
namespace {

TEST_F(ServerTest, UnhealthyEngineMakesHealth503WithReasonAndRequests503) {
  start();
  auto c = http();
  auto ok = c.Get("/health");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);

  engine_->set_unhealthy("step 7 failed: CUDA error: an illegal memory access was encountered");
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 503);
  json hb = json::parse(h->body);
  EXPECT_EQ(hb["status"], "unhealthy");
  EXPECT_NE(hb["reason"].get<std::string>().find("illegal memory access"), std::string::npos);

  auto r = post("/v1/chat/completions",
                {{"model", "fake-model"},
                 {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  json e = json::parse(r->body);
  EXPECT_EQ(e["error"]["code"], "engine_unavailable");
  EXPECT_EQ(e["error"]["type"], "server_error");
}

}  // namespace
}  // namespace herd::testing
