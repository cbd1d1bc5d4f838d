// The rank messages round-trip exactly, and malformed bytes fail with herd::Error (never a
// crash or an out-of-bounds read).
#include "engine/exec/plan_codec.h"

#include <gtest/gtest.h>

#include <future>
#include <stdexcept>

#include "engine/common/error.h"

namespace herd {
namespace {

ExecPlan sample_plan() {
  ExecPlan p;
  p.id = 42;
  p.input.token_ids = {1, 2, 3, 4};
  p.input.positions = {0, 1, 2, 7};
  p.input.slot_mapping = {16, 17, 18, 39};
  p.input.query_start = {0, 3, 4};
  p.input.seq_lens = {3, 8};
  p.input.block_tables = {1, -1, 2, 3};
  p.input.max_blocks_per_seq = 2;
  p.input.logits_rows = {2, 3};
  SamplingParams a;
  a.temperature = 0.7, a.top_p = 0.9, a.top_k = 40, a.min_p = 0.05;
  a.repetition_penalty = 1.1, a.frequency_penalty = 0.5, a.presence_penalty = -0.25;
  a.logit_bias = {{5, -100.0f}, {9, 2.5f}};
  a.logprobs = 3;
  a.stop_token_ids = {7};
  a.min_tokens = 2;
  a.stop = {"not sent"};
  p.samples.push_back(make_sample_spec("req-a", a, 123, 0, {1, 2, 3}, {9, 9}));
  p.samples.back().allowed_tokens = {0x5ull, ~0ull, 1ull << 63};  // a grammar's mask
  SamplingParams b;
  b.temperature = 0.0, b.ignore_eos = true;
  p.samples.push_back(make_sample_spec("req-b", b, 7, 3, {4, 5}, {6}));
  return p;
}

TEST(PlanCodec, APlanWithLateMasksCannotBeSent) {
  // Late masks are a future in this process; another rank could never receive them.
  ExecPlan p = sample_plan();
  std::promise<TokenMasks> masks;
  p.late_masks = masks.get_future().share();
  EXPECT_THROW(encode_plan(p), std::logic_error);
}

TEST(PlanCodec, PlanRoundTripsEveryField) {
  const ExecPlan p = sample_plan();
  const std::vector<uint8_t> bytes = encode_plan(p);
  ASSERT_EQ(message_kind(bytes), RankMessage::kPlan);
  const ExecPlan q = decode_plan(bytes);
  EXPECT_EQ(q.id, p.id);
  EXPECT_EQ(q.input.token_ids, p.input.token_ids);
  EXPECT_EQ(q.input.positions, p.input.positions);
  EXPECT_EQ(q.input.slot_mapping, p.input.slot_mapping);
  EXPECT_EQ(q.input.query_start, p.input.query_start);
  EXPECT_EQ(q.input.seq_lens, p.input.seq_lens);
  EXPECT_EQ(q.input.block_tables, p.input.block_tables);
  EXPECT_EQ(q.input.max_blocks_per_seq, p.input.max_blocks_per_seq);
  EXPECT_EQ(q.input.logits_rows, p.input.logits_rows);
  ASSERT_EQ(q.samples.size(), 2u);
  const SampleSpec& s = q.samples[0];
  EXPECT_EQ(s.request_id, "req-a");
  EXPECT_EQ(s.seed, 123u);
  EXPECT_EQ(s.num_generated, 2u);
  EXPECT_EQ(s.prompt_ids, (std::vector<int32_t>{1, 2, 3}));  // repetition penalty on
  EXPECT_EQ(s.output_ids, (std::vector<int32_t>{9, 9}));
  EXPECT_EQ(s.params.temperature, 0.7);
  EXPECT_EQ(s.params.top_p, 0.9);
  EXPECT_EQ(s.params.top_k, 40);
  EXPECT_EQ(s.params.min_p, 0.05);
  EXPECT_EQ(s.params.repetition_penalty, 1.1);
  EXPECT_EQ(s.params.frequency_penalty, 0.5);
  EXPECT_EQ(s.params.presence_penalty, -0.25);
  EXPECT_EQ(s.params.logit_bias, p.samples[0].params.logit_bias);
  EXPECT_EQ(s.params.logprobs, 3);
  EXPECT_EQ(s.params.stop_token_ids, (std::vector<int32_t>{7}));
  EXPECT_EQ(s.params.min_tokens, 2);
  EXPECT_TRUE(s.params.stop.empty());  // stop strings stay in the engine core
  EXPECT_EQ(s.allowed_tokens, p.samples[0].allowed_tokens);
  const SampleSpec& t = q.samples[1];
  EXPECT_EQ(t.sample_index, 3u);
  EXPECT_TRUE(t.params.ignore_eos);
  EXPECT_FALSE(t.params.logprobs.has_value());
  EXPECT_TRUE(t.prompt_ids.empty());  // no penalty: no history copied
  EXPECT_TRUE(t.output_ids.empty());
  EXPECT_EQ(t.num_generated, 1u);
  EXPECT_TRUE(t.allowed_tokens.empty());  // unconstrained
}

TEST(PlanCodec, ResultRoundTrips) {
  ExecResult r;
  r.id = 9;
  r.tokens = {5, 0, 8};
  r.nonfinite = {0, 1, 0};
  TokenLogprob lp;
  lp.id = 5, lp.logprob = -0.5f, lp.top = {{5, -0.5f}, {6, -1.25f}};
  r.logprobs = {lp, std::nullopt, std::nullopt};
  const ExecResult q = decode_result(encode_result(r));
  EXPECT_EQ(q.id, 9u);
  EXPECT_EQ(q.tokens, r.tokens);
  EXPECT_EQ(q.nonfinite, r.nonfinite);
  ASSERT_TRUE(q.logprobs[0].has_value());
  EXPECT_EQ(q.logprobs[0]->top, lp.top);
  EXPECT_FALSE(q.logprobs[1].has_value());
  EXPECT_EQ(message_kind(encode_stop()), RankMessage::kStop);
}

// A reward model's rows travel as scores ([rows, num_labels]) next to placeholder tokens.
TEST(PlanCodec, RewardScoresRoundTrip) {
  ExecResult r;
  r.id = 3;
  r.tokens = {0, 0};
  r.nonfinite = {0, 0};
  r.logprobs = {std::nullopt, std::nullopt};
  r.scores = {1.5f, -2.25f, 0.125f, 7.0f};
  const ExecResult q = decode_result(encode_result(r));
  EXPECT_EQ(q.scores, r.scores);
  EXPECT_EQ(q.tokens, r.tokens);
}

TEST(PlanCodec, EveryTruncationOrCorruptionIsAnError) {
  const std::vector<uint8_t> bytes = encode_plan(sample_plan());
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + std::ptrdiff_t(n));
    EXPECT_THROW(decode_plan(cut), Error) << n;
  }
  std::vector<uint8_t> extra = bytes;
  extra.push_back(0);
  EXPECT_THROW(decode_plan(extra), Error);
  std::vector<uint8_t> huge = bytes;
  for (size_t i = 10; i < 18; ++i) huge[i] = 0xff;  // the first vector's length
  EXPECT_THROW(decode_plan(huge), Error);
  EXPECT_THROW(decode_result(bytes), Error);  // wrong kind
  EXPECT_THROW(message_kind({}), Error);
  EXPECT_THROW(message_kind({0x7f}), Error);
}

}  // namespace
}  // namespace herd
