// /v1/files and /v1/batches on a FakeEngine: upload, create, run to completion in OpenAI's
// batch output format, list/retrieve/cancel, the errors of bad fields, no --state-dir, and a
// server restarted mid-batch that resumes it without answering any custom_id twice. Batch
// requests reach the engine at kBatchPriority, interactive ones at 0.
#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include "server/engine_client.h"
#include "tests/model/checkpoint_test_util.h"
#include "tests/server/server_fixture.h"

namespace herd::testing {
namespace {

std::string batch_input(int n, const std::string& url = "/v1/completions") {
  std::string text;
  for (int i = 0; i < n; ++i) {
    json body = url == "/v1/completions"
                    ? json{{"prompt", "p"}, {"max_tokens", 50}}
                    : json{{"messages", {{{"role", "user"}, {"content", "hi"}}}}};
    text += json{
        {"custom_id", std::string("r").append(std::to_string(i))},
        {"method", "POST"},
        {"url", url},
        {"body",
         body}}.dump();
    text += "\n";
  }
  return text;
}

class Batches : public ServerTest {
 protected:
  void start_with_state(FakeEngineOptions eopts = {}, int in_flight = 32,
                        int64_t expiry_s = 24 * 3600) {
    server::ServerOptions o;
    o.state_dir = state_.path();
    o.batch_max_in_flight = in_flight;
    o.batch_expiry_s = expiry_s;
    o.max_body_bytes = 64 * 1024;
    start(o, std::move(eopts));
  }
  json upload(const std::string& content, const std::string& purpose = "batch", int status = 200) {
    auto c = http();
    httplib::MultipartFormDataItems items{{"purpose", purpose, "", ""},
                                          {"file", content, "in.jsonl", "application/jsonl"}};
    auto r = c.Post("/v1/files", items);
    EXPECT_TRUE(r);
    if (!r) return json();
    EXPECT_EQ(r->status, status) << r->body;
    return json::parse(r->body);
  }
  json create(const json& body, int status = 200) {
    auto r = post("/v1/batches", body);
    EXPECT_TRUE(r);
    if (!r) return json();
    EXPECT_EQ(r->status, status) << r->body;
    return json::parse(r->body);
  }
  json get(const std::string& path) {
    auto c = http();
    auto r = c.Get(path.c_str());
    EXPECT_TRUE(r);
    if (!r) return json();
    EXPECT_EQ(r->status, 200) << path << ": " << r->body;
    return json::parse(r->body);
  }
  std::string content(const std::string& file_id) {
    auto c = http();
    auto r = c.Get(("/v1/files/" + file_id + "/content").c_str());
    EXPECT_TRUE(r && r->status == 200);
    return r ? r->body : "";
  }
  // Polls until `pred` holds of the batch object (or 60 s pass: the test then fails).
  template <class Pred>
  json wait_for(const std::string& id, Pred pred) {
    json b;
    for (int i = 0; i < 6000; ++i) {
      b = get("/v1/batches/" + id);
      if (pred(b)) return b;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "batch never reached the state: " << b.dump();
    return b;
  }
  static std::vector<json> lines(const std::string& text) {
    std::vector<json> out;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t nl = text.find('\n', pos);
      out.push_back(json::parse(text.substr(pos, nl - pos)));
      pos = nl + 1;
    }
    return out;
  }
  ScratchDir state_;
};

TEST_F(Batches, RunToCompletionInOpenAIShapes) {
  start_with_state();
  std::string input = batch_input(3);
  input += "not json\n";
  input += json{{"custom_id", "bad"},
                {"method", "POST"},
                {"url", "/v1/completions"},
                {"body", {{"prompt", "p"}, {"temperature", "hot"}}}}
               .dump() +
           "\n";
  json f = upload(input);
  EXPECT_EQ(f["object"], "file");
  EXPECT_EQ(f["purpose"], "batch");
  EXPECT_EQ(f["bytes"], input.size());
  EXPECT_EQ(get("/v1/files/" + f["id"].get<std::string>())["filename"], "in.jsonl");
  EXPECT_EQ(content(f["id"]), input);

  json b = create({{"input_file_id", f["id"]},
                   {"endpoint", "/v1/completions"},
                   {"completion_window", "24h"},
                   {"metadata", {{"job", "t"}}}});
  EXPECT_EQ(b["object"], "batch");
  EXPECT_EQ(b["metadata"]["job"], "t");
  b = wait_for(b["id"], [](const json& x) { return x["status"] == "completed"; });
  EXPECT_EQ(b["request_counts"]["total"], 5);
  EXPECT_EQ(b["request_counts"]["completed"], 3);
  EXPECT_EQ(b["request_counts"]["failed"], 2);
  ASSERT_TRUE(b["errors"].is_object());
  EXPECT_EQ(b["errors"]["data"][0]["line"], 4);
  EXPECT_GE(b["completed_at"].get<int64_t>(), b["created_at"].get<int64_t>());

  auto out = lines(content(b["output_file_id"]));
  ASSERT_EQ(out.size(), 3u);
  for (const auto& l : out) {
    EXPECT_EQ(l["response"]["status_code"], 200);
    EXPECT_EQ(l["response"]["body"]["object"], "text_completion");
    EXPECT_TRUE(l["error"].is_null());
  }
  auto err = lines(content(b["error_file_id"]));
  ASSERT_EQ(err.size(), 1u);
  EXPECT_EQ(err[0]["custom_id"], "bad");
  EXPECT_EQ(err[0]["response"]["status_code"], 400);
  EXPECT_EQ(get("/v1/files/" + b["output_file_id"].get<std::string>())["purpose"], "batch_output");

  json list = get("/v1/batches?limit=1");
  EXPECT_EQ(list["object"], "list");
  ASSERT_EQ(list["data"].size(), 1u);
  EXPECT_FALSE(list["has_more"].get<bool>());

  // Batch requests reach the engine behind interactive ones.
  ASSERT_EQ(post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 2}})->status, 200);
  std::map<int, int> priorities;
  for (const auto& r : engine_->received()) ++priorities[r.priority];
  EXPECT_EQ(priorities[kBatchPriority], 3);
  EXPECT_EQ(priorities[0], 1);
}

TEST_F(Batches, BadFieldsAndUnknownIds) {
  start_with_state();
  upload("x\n", "fine-tune", 400);
  json f = upload(batch_input(1));
  create({{"input_file_id", f["id"]}, {"endpoint", "/v1/embeddings"}, {"completion_window", "24h"}},
         400);
  create({{"input_file_id", f["id"]}, {"endpoint", "/v1/completions"}, {"completion_window", "1h"}},
         400);
  json e = create({{"endpoint", "/v1/completions"}, {"completion_window", "24h"}}, 400);
  EXPECT_EQ(e["error"]["param"], "input_file_id");
  create({{"input_file_id", "file-0123"},
          {"endpoint", "/v1/completions"},
          {"completion_window", "24h"}},
         404);
  auto c = http();
  EXPECT_EQ(c.Get("/v1/batches/batch_nope")->status, 404);
  EXPECT_EQ(c.Get("/v1/files/../../etc/passwd")->status, 404);
  EXPECT_EQ(c.Get("/v1/batches?limit=0")->status, 400);
  // Larger than --max-body-bytes: 413 like every other route.
  auto r = c.Post("/v1/files", httplib::MultipartFormDataItems{
                                   {"purpose", "batch", "", ""},
                                   {"file", std::string(100 * 1024, 'x'), "big.jsonl", ""}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
}

TEST_F(Batches, DuplicateCustomIdsFailTheBatch) {
  start_with_state();
  json f = upload(batch_input(2) + batch_input(1));
  json b = create(
      {{"input_file_id", f["id"]}, {"endpoint", "/v1/completions"}, {"completion_window", "24h"}});
  b = wait_for(b["id"], [](const json& x) { return x["status"] == "failed"; });
  EXPECT_EQ(b["errors"]["data"][0]["code"], "duplicate_custom_id");
  EXPECT_EQ(b["errors"]["data"][0]["line"], 3);
  EXPECT_TRUE(engine_->received().empty());
}

TEST_F(Batches, OffWithoutStateDir) {
  start();
  auto c = http();
  auto r = c.Get("/v1/batches");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_NE(r->body.find("--state-dir"), std::string::npos);
}

TEST_F(Batches, CancelStopsTheBatch) {
  FakeEngineOptions eo;
  eo.token_delay = std::chrono::microseconds(2000);
  start_with_state(eo, 1);
  json f = upload(batch_input(50));
  json b = create(
      {{"input_file_id", f["id"]}, {"endpoint", "/v1/completions"}, {"completion_window", "24h"}});
  wait_for(b["id"], [](const json& x) { return x["request_counts"]["completed"] >= 1; });
  auto r = post("/v1/batches/" + b["id"].get<std::string>() + "/cancel", json::object());
  ASSERT_EQ(r->status, 200) << r->body;
  b = wait_for(b["id"], [](const json& x) { return x["status"] == "cancelled"; });
  EXPECT_LT(b["request_counts"]["completed"].get<int>(), 50);
  EXPECT_EQ(lines(content(b["output_file_id"])).size(),
            b["request_counts"]["completed"].get<size_t>());
}

// A batch that outlives its window (here 2 s, 24 h by default) ends `expired`: the answered
// requests stay in the output file, every other one gets a batch_expired line in the error
// file, and the counts add up. A second batch queued behind it expires without running.
TEST_F(Batches, ExpiredBatchKeepsItsAnswersAndFailsTheRest) {
  const int n = 50;
  FakeEngineOptions eo;
  eo.token_delay = std::chrono::microseconds(2000);  // 50 tokens: ~0.1 s a request, 5 s in all
  start_with_state(eo, 1, /*expiry_s=*/2);
  json f = upload(batch_input(n));
  const json create_body = {
      {"input_file_id", f["id"]}, {"endpoint", "/v1/completions"}, {"completion_window", "24h"}};
  json b = create(create_body);
  json queued = create(create_body);
  EXPECT_EQ(b["expires_at"].get<int64_t>() - b["created_at"].get<int64_t>(), 2);
  b = wait_for(b["id"], [](const json& x) { return x["status"] == "expired"; });
  EXPECT_FALSE(b["expired_at"].is_null());
  EXPECT_TRUE(b["completed_at"].is_null());
  const int completed = b["request_counts"]["completed"];
  EXPECT_GE(completed, 1);
  EXPECT_LT(completed, n);
  EXPECT_EQ(b["request_counts"]["failed"].get<int>(), n - completed);
  EXPECT_EQ(b["request_counts"]["total"].get<int>(), n);
  std::map<std::string, int> seen;
  for (const auto& l : lines(content(b["output_file_id"]))) {
    EXPECT_EQ(l["response"]["status_code"], 200);
    ++seen[l["custom_id"]];
  }
  EXPECT_EQ(seen.size(), size_t(completed));
  for (const auto& l : lines(content(b["error_file_id"]))) {
    EXPECT_EQ(l["error"]["code"], "batch_expired") << l.dump();
    EXPECT_TRUE(l["response"].is_null());
    ++seen[l["custom_id"]];
  }
  EXPECT_EQ(seen.size(), size_t(n));  // every custom_id answered once, in one file or the other
  for (const auto& [cid, count] : seen) EXPECT_EQ(count, 1) << cid;

  queued = wait_for(queued["id"], [](const json& x) { return x["status"] == "expired"; });
  EXPECT_EQ(queued["request_counts"]["completed"], 0);
  EXPECT_EQ(queued["request_counts"]["failed"], n);
  EXPECT_TRUE(queued["output_file_id"].is_null());  // nothing answered: no output file
  EXPECT_EQ(lines(content(queued["error_file_id"])).size(), size_t(n));
}

TEST_F(Batches, RestartMidBatchResumesWithoutDuplicates) {
  const int n = 30;
  FakeEngineOptions eo;
  eo.token_delay = std::chrono::microseconds(1000);
  start_with_state(eo, 1);
  json f = upload(batch_input(n));
  json b = create(
      {{"input_file_id", f["id"]}, {"endpoint", "/v1/completions"}, {"completion_window", "24h"}});
  const std::string id = b["id"];
  wait_for(id, [](const json& x) { return x["request_counts"]["completed"] >= 3; });
  // Stop the server (the batch's requests in flight are aborted) and start a new one on the
  // same state folder.
  server_->shutdown(std::chrono::milliseconds(0));
  server_.reset();
  engine_->shutdown();
  start_with_state(eo, 4);
  b = get("/v1/batches/" + id);
  EXPECT_LT(b["request_counts"]["completed"].get<int>(), n) << "finished before the restart";
  b = wait_for(id, [](const json& x) { return x["status"] == "completed"; });
  EXPECT_EQ(b["request_counts"]["completed"], n);
  std::map<std::string, int> seen;
  for (const auto& l : lines(content(b["output_file_id"]))) ++seen[l["custom_id"]];
  EXPECT_EQ(seen.size(), size_t(n));
  for (const auto& [cid, count] : seen) EXPECT_EQ(count, 1) << cid;
}

}  // namespace
}  // namespace herd::testing
