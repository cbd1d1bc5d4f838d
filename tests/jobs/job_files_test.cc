// engine/jobs: the JSONL input reader, the resumable result journal and the progress counters.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "engine/common/error.h"
#include "engine/jobs/job_progress.h"
#include "engine/jobs/jsonl_input.h"
#include "engine/jobs/result_journal.h"

namespace herd {
namespace {

namespace fs = std::filesystem;

class JobFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("herd_jobs_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  static void write(const std::string& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
  }
  static std::string read(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  fs::path dir_;
};

TEST_F(JobFilesTest, InputReportsBadLinesWithTheirNumbersAndSkipsBlankOnes) {
  const std::string p = path("in.jsonl");
  write(p, "{\"id\": 1}\n\n  \nnot json\n[1, 2]\r\n{\"id\": \"two\"}\r\n{\"id\": 3}");
  JsonlInput in(p);
  std::vector<JsonlLine> lines;
  while (auto l = in.next()) lines.push_back(*l);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_TRUE(lines[0].ok());
  EXPECT_EQ(lines[0].line_no, 1);
  EXPECT_EQ(lines[0].value["id"], 1);
  EXPECT_EQ(lines[1].line_no, 4);
  EXPECT_EQ(lines[1].error, "not valid JSON");
  EXPECT_EQ(lines[2].line_no, 5);
  EXPECT_EQ(lines[2].error, "not a JSON object");
  EXPECT_EQ(lines[3].line_no, 6);
  EXPECT_EQ(lines[3].value["id"], "two");  // CRLF accepted
  EXPECT_EQ(lines[4].line_no, 7);          // last line without '\n'
  EXPECT_EQ(lines[4].value["id"], 3);
}

TEST_F(JobFilesTest, InputRefusesAnOverlongLineAndGoesOnWithTheNext) {
  const std::string p = path("in.jsonl");
  write(p, "{\"text\": \"" + std::string(100, 'x') + "\"}\n{\"id\": 2}\n");
  JsonlInput in(p, /*max_line_bytes=*/64);
  auto first = in.next();
  ASSERT_TRUE(first);
  EXPECT_FALSE(first->ok());
  EXPECT_EQ(first->line_no, 1);
  EXPECT_NE(first->error.find("longer than 64 bytes"), std::string::npos);
  auto second = in.next();
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->ok());
  EXPECT_EQ(second->line_no, 2);
  EXPECT_FALSE(in.next());
}

TEST_F(JobFilesTest, InputThatCannotBeOpenedNamesThePath) {
  try {
    JsonlInput in(path("missing.jsonl"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.jsonl"), std::string::npos);
  }
}

TEST_F(JobFilesTest, JournalReopenCutsTheTornLineAndReportsWhatIsDone) {
  const std::string p = path("out.jsonl");
  {
    ResultJournal j(p, "id");
    EXPECT_EQ(j.num_done(), 0);
    j.append({{"id", "a"}, {"text", "one"}});
    j.append({{"id", 7}, {"text", "two"}}, /*sync=*/true);
  }
  const std::string whole = read(p);
  // What a kill -9 in the middle of the third write leaves behind.
  write(p, whole + "{\"id\": \"b\", \"te");
  ResultJournal j(p, "id");
  EXPECT_EQ(j.torn_lines_cut(), 1);
  EXPECT_EQ(j.num_done(), 2);
  EXPECT_TRUE(j.done("a"));
  EXPECT_TRUE(j.done("7"));  // a number key is its JSON text
  EXPECT_FALSE(j.done("b"));
  EXPECT_EQ(read(p), whole);
  j.append({{"id", "b"}, {"text", "three"}});
  std::istringstream lines(read(p));
  std::string line;
  std::vector<std::string> ids;
  while (std::getline(lines, line))
    ids.push_back(ResultJournal::key_of(nlohmann::json::parse(line)["id"]));
  EXPECT_EQ(ids, (std::vector<std::string>{"a", "7", "b"}));
}

// OpenAI's batch output lists id, custom_id, response, error in that order; clients that diff
// files or read them by eye rely on it, so an ordered record keeps its insertion order.
TEST_F(JobFilesTest, OrderedRecordsKeepTheirMemberOrder) {
  const std::string p = path("out.jsonl");
  ResultJournal j(p, "custom_id");
  nlohmann::ordered_json r;
  r["id"] = "batch_req_1";
  r["custom_id"] = "zeta";
  r["response"] = nullptr;
  r["error"] = nlohmann::ordered_json{{"code", "x"}, {"message", "m"}};
  j.append_ordered(r);
  EXPECT_EQ(read(p),
            "{\"id\":\"batch_req_1\",\"custom_id\":\"zeta\",\"response\":null,"
            "\"error\":{\"code\":\"x\",\"message\":\"m\"}}\n");
  EXPECT_TRUE(j.done("zeta"));
  EXPECT_THROW(j.append_ordered(r), Error);  // the same key twice is a bug, as for append()
}

TEST_F(JobFilesTest, JournalRefusesADuplicateKeyAndAForeignFile) {
  const std::string p = path("out.jsonl");
  ResultJournal j(p, "custom_id");
  j.append({{"custom_id", "r1"}});
  EXPECT_THROW(j.append({{"custom_id", "r1"}}), Error);
  EXPECT_THROW(j.append({{"id", "r2"}}), Error);  // no key
  const std::string foreign = path("notes.jsonl");
  write(foreign, "{\"custom_id\": \"r1\"}\nhello\n");
  try {
    ResultJournal other(foreign, "custom_id");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("notes.jsonl:2"), std::string::npos) << e.what();
  }
}

TEST_F(JobFilesTest, JournalKeepsGeneratedTextWithInvalidUtf8Readable) {
  const std::string p = path("out.jsonl");
  {
    ResultJournal j(p, "id");
    j.append({{"id", 1}, {"text", std::string("ok \xff\xfe")}});
  }
  ResultJournal j(p, "id");
  EXPECT_TRUE(j.done("1"));
}

TEST_F(JobFilesTest, JournalAppendsFromManyThreadsWithoutInterleaving) {
  const std::string p = path("out.jsonl");
  {
    ResultJournal j(p, "id");
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&j, t] {
        for (int i = 0; i < 50; ++i)
          j.append({{"id", t * 1000 + i}, {"pad", std::string(500, 'p')}});
      });
    }
    for (auto& th : threads) th.join();
  }
  ResultJournal j(p, "id");
  EXPECT_EQ(j.num_done(), 200);
  EXPECT_EQ(j.torn_lines_cut(), 0);
}

TEST_F(JobFilesTest, ProgressCountsRatesAndEta) {
  double now = 100.0;
  std::FILE* sink = std::tmpfile();
  ASSERT_NE(sink, nullptr);
  JobProgress p(/*total=*/10, /*resumed=*/2, sink, /*interactive=*/true, [&now] { return now; });
  nlohmann::json s = p.summary();
  EXPECT_EQ(s["done"], 2);
  EXPECT_TRUE(s["eta_s"].is_null());  // nothing finished in this run yet
  now = 102.0;
  p.add_done(30);
  p.add_done(10);
  p.add_failed();
  s = p.summary();
  EXPECT_EQ(s["done"], 4);
  EXPECT_EQ(s["failed"], 1);
  EXPECT_EQ(s["resumed"], 2);
  EXPECT_DOUBLE_EQ(s["elapsed_s"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(s["items_per_s"].get<double>(), 1.5);         // 3 finished in 2 s
  EXPECT_DOUBLE_EQ(s["output_tokens_per_s"].get<double>(), 20);  // 40 tokens in 2 s
  EXPECT_DOUBLE_EQ(s["eta_s"].get<double>(), 5.0 / 1.5);         // 10 - 2 - 3 left
  EXPECT_EQ(p.line(), "4/10 done (1 failed) 1.50 items/s 20.0 tok/s ETA 3s");
  p.finish();
  std::rewind(sink);
  char buf[512] = {};
  const size_t n = std::fread(buf, 1, sizeof buf - 1, sink);
  const std::string drawn(buf, n);
  EXPECT_NE(drawn.find("4/10 done (1 failed)"), std::string::npos) << drawn;
  EXPECT_EQ(drawn.back(), '\n');
  std::fclose(sink);
}

TEST_F(JobFilesTest, ProgressDrawsNothingWhenNotInteractive) {
  std::FILE* sink = std::tmpfile();
  ASSERT_NE(sink, nullptr);
  JobProgress p(/*total=*/-1, 0, sink, /*interactive=*/false);
  p.add_done(5);
  p.finish();
  EXPECT_EQ(std::ftell(sink), 0);
  EXPECT_FALSE(p.summary().contains("eta_s"));
  std::fclose(sink);
}

}  // namespace
}  // namespace herd
