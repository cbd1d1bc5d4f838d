// The rejection-sampling job (engine/jobs/rejection_sampling.h) in process, on a tiny policy and
// the tiny-rm reward model: one well-formed record per prompt with K scored candidates, the
// best chosen and the rest rejected; bad lines reported with their numbers; the same seed gives
// the same candidates; a rerun over a partial output (torn last line included) completes it
// with exactly one record per prompt.
#include "engine/jobs/rejection_sampling.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>

#include "engine/common/error.h"
#include "engine/jobs/result_journal.h"
#include "engine/tokenizer/tokenizer.h"
#include "tests/api/engine_test_util.h"
#include "tests/model/checkpoint_test_util.h"

namespace herd {
namespace {

using json = nlohmann::json;

std::vector<json> read_records(const std::string& path) {
  std::ifstream in(path);
  std::vector<json> out;
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

class RejectionSampling : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineOptions p = testing::tiny_engine_options(256);
    p.policy = AdmissionPolicy::kReserve;
    policy_ = Engine::create(p);
    EngineOptions r = testing::tiny_engine_options(128);
    r.model_dir = testing::tiny_model_dir("tiny-rm");
    reward_engine_ = Engine::create(r);
    scorer_ = std::make_unique<EngineScorer>(*reward_engine_);
  }
  void write_input(const std::string& text) { std::ofstream(dir_ / "in.jsonl") << text; }
  RsOptions options(const std::string& out) const {
    RsOptions o;
    o.prompts_path = dir_ / "in.jsonl";
    o.output_path = dir_ / out;
    o.samples = 3;
    o.max_tokens = 6;
    o.temperature = 1.0;
    o.seed = 42;
    o.prompts_in_flight = 2;
    return o;
  }
  RsSummary run(const RsOptions& o) {
    return run_rejection_sampling(*policy_, *scorer_, o, nullptr, false);
  }

  testing::ScratchDir dir_;
  std::unique_ptr<Engine> policy_, reward_engine_;
  std::unique_ptr<EngineScorer> scorer_;
};

const char* kInput =
    "{\"id\": \"a\", \"messages\": [{\"role\": \"user\", \"content\": \"hello there\"}]}\n"
    "not json\n"
    "{\"id\": 7, \"prompt\": \"Once upon a time\"}\n"
    "\n"
    "{\"messages\": [{\"role\": \"user\", \"content\": \"no id\"}]}\n"
    "{\"id\": \"a\", \"prompt\": \"a repeated id\"}\n"
    "{\"id\": \"c\", \"messages\": [{\"role\": \"system\", \"content\": \"be brief\"}, "
    "{\"role\": \"user\", \"content\": \"why?\"}]}\n"
    "{\"id\": \"d\", \"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}\n";

TEST_F(RejectionSampling, OneRecordPerPromptWithScoredCandidatesAndBadLinesReported) {
  write_input(kInput);
  const RsSummary s = run(options("out.jsonl"));
  EXPECT_EQ(s.total, 3);
  EXPECT_EQ(s.done, 3);
  EXPECT_EQ(s.failed, 0);
  std::vector<int64_t> bad;
  for (const RsBadLine& b : s.bad_lines) bad.push_back(b.line_no);
  EXPECT_EQ(bad, (std::vector<int64_t>{2, 5, 6, 8}));
  EXPECT_NE(s.bad_lines[2].error.find("repeats"), std::string::npos) << s.bad_lines[2].error;
  EXPECT_NE(s.bad_lines[3].error.find("role"), std::string::npos) << s.bad_lines[3].error;

  const auto recs = read_records(dir_ / "out.jsonl");
  ASSERT_EQ(recs.size(), 3u);
  std::set<std::string> ids;
  int64_t tokens = 0;
  for (const json& r : recs) {
    ids.insert(ResultJournal::key_of(r["id"]));
    ASSERT_EQ(r["candidates"].size(), 3u) << r.dump();
    EXPECT_TRUE(r.contains(r["id"] == 7 ? "prompt" : "messages")) << r.dump();
    size_t best = 0;
    int completion = 0;
    std::vector<size_t> rejected;
    for (size_t i = 0; i < 3; ++i) {
      const json& c = r["candidates"][i];
      EXPECT_EQ(c["index"], i);
      EXPECT_GE(c["completion_tokens"].get<int>(), 1);
      EXPECT_LE(c["completion_tokens"].get<int>(), 6);
      EXPECT_TRUE(c["finish_reason"] == "stop" || c["finish_reason"] == "length");
      EXPECT_TRUE(std::isfinite(c["score"].get<double>()));
      completion += c["completion_tokens"].get<int>();
      if (c["score"].get<double>() > r["candidates"][best]["score"].get<double>()) best = i;
    }
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(r["candidates"][i]["status"], i == best ? "chosen" : "rejected");
      if (i != best) rejected.push_back(i);
    }
    EXPECT_EQ(r["chosen_index"], best);
    EXPECT_EQ(r["chosen"], r["candidates"][best]["text"]);
    EXPECT_EQ(r["rejected_indices"].get<std::vector<size_t>>(), rejected);
    EXPECT_EQ(r["usage"]["completion_tokens"], completion);
    EXPECT_GT(r["usage"]["prompt_tokens"].get<int>(), 0);
    tokens += completion;
  }
  EXPECT_EQ(ids, (std::set<std::string>{"a", "7", "c"}));
  EXPECT_EQ(s.output_tokens, tokens);
  EXPECT_GT(s.reward_busy_s, 0.0);
  EXPECT_LE(s.reward_busy_s, s.elapsed_s);
}

// A candidate's score is the reward model's score of the conversation with that reply.
TEST_F(RejectionSampling, ScoreIsTheRewardOfPromptPlusReply) {
  write_input("{\"id\": \"a\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n");
  run(options("out.jsonl"));
  const auto recs = read_records(dir_ / "out.jsonl");
  ASSERT_EQ(recs.size(), 1u);
  const json& c = recs[0]["candidates"][1];
  std::vector<ChatMessage> msgs(2);
  msgs[0].role = "user";
  msgs[0].content = "hi";
  msgs[1].role = "assistant";
  msgs[1].content = c["text"].get<std::string>();
  ChatFormatOptions fo;
  fo.add_generation_prompt = false;
  Request r;
  r.id = "direct";
  r.prompt_ids = encode_llama31_chat(reward_engine_->tokenizer(), msgs, fo);
  const auto direct = reward_engine_->generate({r});
  ASSERT_EQ(direct[0][0].scores.size(), 1u);
  EXPECT_NEAR(c["score"].get<double>(), direct[0][0].scores[0], 1e-4);
}

TEST_F(RejectionSampling, SameSeedSameCandidatesWhateverTheBatch) {
  write_input(kInput);
  run(options("one.jsonl"));
  RsOptions o = options("two.jsonl");
  o.prompts_in_flight = 1;  // another batch composition
  run(o);
  std::map<std::string, json> one, two;
  for (const json& r : read_records(dir_ / "one.jsonl")) one[ResultJournal::key_of(r["id"])] = r;
  for (const json& r : read_records(dir_ / "two.jsonl")) two[ResultJournal::key_of(r["id"])] = r;
  ASSERT_EQ(one.size(), 3u);
  ASSERT_EQ(two.size(), 3u);
  for (const auto& [id, r] : one) {
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(r["candidates"][i]["text"], two[id]["candidates"][i]["text"]) << id << " " << i;
      EXPECT_NEAR(r["candidates"][i]["score"].get<double>(),
                  two[id]["candidates"][i]["score"].get<double>(), 1e-4);
    }
    EXPECT_EQ(r["seed"], two[id]["seed"]);
  }
}

TEST_F(RejectionSampling, RerunCompletesAPartialOutputWithOneRecordPerPrompt) {
  write_input(kInput);
  run(options("full.jsonl"));
  const auto full = read_records(dir_ / "full.jsonl");
  ASSERT_EQ(full.size(), 3u);
  // What a kill leaves: the first record, then half of the second.
  const std::string second = full[1].dump();
  std::ofstream(dir_ / "partial.jsonl") << full[0].dump() << "\n"
                                        << second.substr(0, second.size() / 2);
  const RsSummary s = run(options("partial.jsonl"));
  EXPECT_EQ(s.resumed, 1);
  EXPECT_EQ(s.done, 2);
  const auto recs = read_records(dir_ / "partial.jsonl");
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0], full[0]);  // untouched
  std::map<std::string, json> want;
  for (const json& r : full) want[ResultJournal::key_of(r["id"])] = r;
  std::set<std::string> ids;
  for (const json& r : recs) {
    const std::string id = ResultJournal::key_of(r["id"]);
    EXPECT_TRUE(ids.insert(id).second) << "duplicate record " << id;
    for (size_t i = 0; i < 3; ++i)
      EXPECT_EQ(r["candidates"][i]["text"], want[id]["candidates"][i]["text"]);
  }
  // Nothing left to do: a third run writes nothing.
  const RsSummary again = run(options("partial.jsonl"));
  EXPECT_EQ(again.resumed, 3);
  EXPECT_EQ(again.done, 0);
  EXPECT_EQ(read_records(dir_ / "partial.jsonl").size(), 3u);
}

TEST_F(RejectionSampling, SystemPromptIsAddedToChatsWithoutOne) {
  const RsPrompt p = parse_rs_prompt(
      json::parse(R"({"id": 1, "messages": [{"role": "user", "content": "x"}]})"), "be kind");
  ASSERT_EQ(p.messages.size(), 2u);
  EXPECT_EQ(p.messages[0].role, "system");
  EXPECT_EQ(p.messages[0].content, "be kind");
  const RsPrompt own =
      parse_rs_prompt(json::parse(R"({"id": 1, "messages": [{"role": "system", "content": "mine"},
                                            {"role": "user", "content": "x"}]})"),
                      "be kind");
  ASSERT_EQ(own.messages.size(), 2u);
  EXPECT_EQ(own.messages[0].content, "mine");
  const RsPrompt text = parse_rs_prompt(json::parse(R"({"id": "t", "prompt": "go"})"), "sys");
  EXPECT_EQ(text.text, "sys\n\ngo");
  // The seed depends on the job seed and the id only.
  EXPECT_EQ(rs_prompt_seed(5, "a"), rs_prompt_seed(5, "a"));
  EXPECT_NE(rs_prompt_seed(5, "a"), rs_prompt_seed(5, "b"));
  EXPECT_NE(rs_prompt_seed(5, "a"), rs_prompt_seed(6, "a"));
}

TEST_F(RejectionSampling, NotARewardModelIsRefused) { EXPECT_THROW(EngineScorer{*policy_}, Error); }

}  // namespace
}  // namespace herd
