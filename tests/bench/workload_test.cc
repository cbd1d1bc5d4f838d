// Prompt generation (random ids, shared prefix, JSONL datasets) and --base-url parsing.
#include "benchmarks/client/workload.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>

#include "benchmarks/client/http_backend.h"
#include "engine/common/error.h"
#include "engine/tokenizer/tokenizer.h"

namespace herd::bench {
namespace {

TEST(Workload, TokenPoolIsDistinctAndSorted) {
  EXPECT_EQ(token_pool({5, 3, 5, 9, 3}), (std::vector<int32_t>{3, 5, 9}));
}

// --tokenizer: the pool comes from the model's tokenizer on the client machine, so a server
// without herd's /tokenize (llama-server, vLLM) can be measured.
TEST(Workload, LocalTokenPoolIsTheTokenizersNonSpecialIds) {
  const std::string dir = std::string(HERD_TESTDATA_DIR) + "/llama3-tokenizer";
  if (access((dir + "/tokenizer.json").c_str(), R_OK) != 0)
    GTEST_SKIP() << "needs ../shared/testdata/llama3-tokenizer (absent)";
  const std::vector<int32_t> pool = local_token_pool(dir);
  auto tok = load_tokenizer(dir);
  std::vector<int32_t> expected = tok->encode(pool_text());
  std::erase_if(expected, [&](int32_t id) { return tok->is_special(id); });
  expected = token_pool(expected);
  EXPECT_EQ(pool, expected);
  EXPECT_GT(pool.size(), 50u);
  for (int32_t id : pool) {
    EXPECT_FALSE(tok->is_special(id)) << id;
    EXPECT_NE(id, tok->bos_id());
  }
}

TEST(Workload, LocalTokenPoolOfABadDirectoryNamesTheFlag) {
  try {
    local_token_pool("/nonexistent/herd-tokenizer");
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.param(), "tokenizer");
    EXPECT_NE(std::string(e.what()).find("/nonexistent/herd-tokenizer"), std::string::npos);
  }
}

TEST(Workload, RandomPromptsHaveExactLengthsAndPoolIds) {
  const std::vector<int32_t> pool = {10, 20, 30, 40, 50, 60, 70, 80};
  WorkloadOptions o;
  o.num_prompts = 20;
  o.input_len = 33;
  o.output_len = 7;
  o.seed = 3;
  auto reqs = random_workload(o, pool);
  ASSERT_EQ(reqs.size(), 20u);
  std::set<std::vector<int32_t>> distinct;
  for (const auto& r : reqs) {
    EXPECT_EQ(r.ids.size(), 33u);
    EXPECT_EQ(r.prompt_len, 33);
    EXPECT_EQ(r.output_len, 7);
    EXPECT_TRUE(r.text.empty());
    for (int32_t id : r.ids) EXPECT_TRUE(std::binary_search(pool.begin(), pool.end(), id)) << id;
    distinct.insert(r.ids);
  }
  EXPECT_EQ(distinct.size(), 20u);
  // Reproducible from the seed.
  auto again = random_workload(o, pool);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(reqs[i].ids, again[i].ids);
}

TEST(Workload, SharedPrefix) {
  const std::vector<int32_t> pool = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  WorkloadOptions o;
  o.num_prompts = 5;
  o.input_len = 12;
  o.prefix_len = 16;
  o.output_len = 1;
  auto reqs = random_workload(o, pool);
  for (const auto& r : reqs) {
    ASSERT_EQ(r.ids.size(), 28u);
    EXPECT_EQ(r.prompt_len, 28);
    EXPECT_TRUE(std::equal(r.ids.begin(), r.ids.begin() + 16, reqs[0].ids.begin()));
  }
  // The parts after the prefix differ.
  EXPECT_FALSE(std::equal(reqs[0].ids.begin() + 16, reqs[0].ids.end(), reqs[1].ids.begin() + 16));
}

TEST(Workload, EmptyPoolIsAnError) {
  WorkloadOptions o;
  o.num_prompts = 1;
  o.input_len = 1;
  EXPECT_THROW(random_workload(o, {}), Error);
}

class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    char tmpl[] = "/tmp/herd_bench_XXXXXX";
    int fd = mkstemp(tmpl);
    path_ = tmpl;
    close(fd);
    std::ofstream(path_) << content;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(Workload, DatasetLinesInOrderCycling) {
  TempFile f("{\"prompt\": \"alpha\"}\n\n{\"prompt\": \"beta\", \"other\": 1}\n");
  WorkloadOptions o;
  o.num_prompts = 5;
  o.output_len = 4;
  auto reqs = dataset_workload(o, f.path());
  ASSERT_EQ(reqs.size(), 5u);
  const char* want[] = {"alpha", "beta", "alpha", "beta", "alpha"};
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(reqs[i].text, want[i]);
    EXPECT_TRUE(reqs[i].ids.empty());
    EXPECT_EQ(reqs[i].prompt_len, 0);
    EXPECT_EQ(reqs[i].output_len, 4);
  }
}

std::string dataset_error(const std::string& content) {
  TempFile f(content);
  WorkloadOptions o;
  o.num_prompts = 1;
  try {
    dataset_workload(o, f.path());
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.param(), "dataset");
    return e.what();
  }
  return "";
}

TEST(Workload, DatasetErrorsNameTheLine) {
  EXPECT_NE(dataset_error("{\"prompt\": \"ok\"}\n{oops\n").find(":2: not valid JSON"),
            std::string::npos);
  EXPECT_NE(dataset_error("{\"text\": \"x\"}\n").find(":1: expected an object"), std::string::npos);
  EXPECT_NE(dataset_error("{\"prompt\": 5}\n").find(":1: expected"), std::string::npos);
  EXPECT_NE(dataset_error("\n\n").find("has no prompts"), std::string::npos);
  WorkloadOptions o;
  o.num_prompts = 1;
  EXPECT_THROW(dataset_workload(o, "/nonexistent/herd.jsonl"), InvalidArgument);
}

TEST(BaseUrl, Parses) {
  HttpTarget t = parse_base_url("http://127.0.0.1:8000");
  EXPECT_EQ(t.scheme, "http");
  EXPECT_EQ(t.host, "127.0.0.1");
  EXPECT_EQ(t.port, 8000);
  EXPECT_EQ(t.path_prefix, "");
  t = parse_base_url("http://example.com/proxy/");
  EXPECT_EQ(t.host, "example.com");
  EXPECT_EQ(t.port, 80);
  EXPECT_EQ(t.path_prefix, "/proxy");
  t = parse_base_url("http://[::1]:9000");
  EXPECT_EQ(t.host, "::1");
  EXPECT_EQ(t.port, 9000);
  t = parse_base_url("https://h");
  EXPECT_EQ(t.scheme, "https");
  EXPECT_EQ(t.port, 443);
}

TEST(BaseUrl, Rejects) {
  for (const char* bad : {"127.0.0.1:8000", "ftp://h", "http://", "http://h:", "http://h:0",
                          "http://h:70000", "http://h:80x", "http://[::1"})
    EXPECT_THROW(parse_base_url(bad), InvalidArgument) << bad;
}

}  // namespace
}  // namespace herd::bench
