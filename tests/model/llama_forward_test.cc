// The forward pass is a function of (tokens, positions, context) only: chunking, batching and
// the physical placement of KV blocks must not change the logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "engine/common/error.h"
#include "engine/model/llama.h"
#include "engine/model/weights.h"
#include "tests/model/random_weights.h"

namespace herd {
namespace {

ModelConfig tiny_config() {
  ModelConfig c;
  c.vocab_size = 97;
  c.hidden_size = 32;
  c.intermediate_size = 56;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.max_position_embeddings = 4096;
  c.rope_theta = 500000.0;
  c.rope_scaling = {true, 8.0, 1.0, 4.0, 64};
  c.torch_dtype = DType::kF32;
  return c;
}

std::shared_ptr<LlamaWeights> random_weights(const ModelConfig& c, uint32_t seed) {
  return testing::random_llama_weights(c, seed);
}

constexpr int kBlock = 4;

// A sequence's chunk for one step: tokens [begin, end) of `ids`, blocks from `table`.
struct Chunk {
  const std::vector<int32_t>* ids;
  const std::vector<int32_t>* table;
  int begin, end;
};

StepInput make_step(const std::vector<Chunk>& chunks, int max_blocks) {
  StepInput in;
  in.max_blocks_per_seq = max_blocks;
  in.query_start.push_back(0);
  for (const Chunk& c : chunks) {
    for (int p = c.begin; p < c.end; ++p) {
      in.token_ids.push_back((*c.ids)[size_t(p)]);
      in.positions.push_back(p);
      in.slot_mapping.push_back((*c.table)[size_t(p / kBlock)] * kBlock + p % kBlock);
    }
    in.query_start.push_back(int32_t(in.token_ids.size()));
    in.seq_lens.push_back(c.end);
    std::vector<int32_t> row(size_t(max_blocks), -1);
    std::copy(c.table->begin(), c.table->end(), row.begin());
    in.block_tables.insert(in.block_tables.end(), row.begin(), row.end());
  }
  return in;
}

class LlamaForwardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_ = tiny_config();
    backend_ = make_cpu_backend(2);
    model_ = std::make_unique<LlamaModel>(cfg_, random_weights(cfg_, 7), *backend_, 64, 16);  // all-row logits need max_seqs >= rows
    kv_ = std::make_unique<KvCache>(*backend_, cfg_, 32, kBlock);
  }
  // Logits for every position of `ids`, computed in one prefill step (all rows requested).
  std::vector<float> full_prefill(const std::vector<int32_t>& ids,
                                  const std::vector<int32_t>& table) {
    StepInput in = make_step({{&ids, &table, 0, int(ids.size())}}, 8);
    for (int i = 0; i < int(ids.size()); ++i) in.logits_rows.push_back(i);
    std::vector<float> out(ids.size() * size_t(cfg_.vocab_size));
    model_->forward(in, *kv_, out.data());
    return out;
  }
  ModelConfig cfg_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<LlamaModel> model_;
  std::unique_ptr<KvCache> kv_;
};

double max_abs_diff(const float* a, const float* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

TEST_F(LlamaForwardTest, LogitsAreFiniteAndDependOnContext) {
  std::vector<int32_t> ids = {1, 5, 9, 33, 2, 96, 40};
  std::vector<int32_t> table = {0, 1};
  auto a = full_prefill(ids, table);
  for (float x : a) ASSERT_TRUE(std::isfinite(x));
  const size_t V = size_t(cfg_.vocab_size);
  // Same token at two positions with different contexts must give different logits.
  EXPECT_GT(max_abs_diff(&a[0], &a[V], V), 1e-3);
}

TEST_F(LlamaForwardTest, ChunkedPrefillAndDecodeMatchOnePrefill) {
  std::vector<int32_t> ids = {3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46};
  std::vector<int32_t> table_a = {0, 1, 2};
  const auto ref = full_prefill(ids, table_a);
  const size_t V = size_t(cfg_.vocab_size);

  // Same tokens through other physical blocks, in chunks 5 + 3 + 1 + 1 + 1 (decode steps).
  std::vector<int32_t> table_b = {9, 4, 17};
  int pos = 0;
  for (int len : {5, 3, 1, 1, 1}) {
    StepInput in = make_step({{&ids, &table_b, pos, pos + len}}, 8);
    in.logits_rows.push_back(len - 1);
    std::vector<float> out(V);
    model_->forward(in, *kv_, out.data());
    pos += len;
    EXPECT_LT(max_abs_diff(out.data(), &ref[size_t(pos - 1) * V], V), 1e-4) << "pos " << pos;
  }
}

TEST_F(LlamaForwardTest, BatchCompositionDoesNotChangeLogits) {
  std::vector<int32_t> a = {7, 8, 9, 10, 11, 12};
  std::vector<int32_t> b = {50, 51, 52};
  std::vector<int32_t> ta = {0, 1}, tb = {2};
  const auto ra = full_prefill(a, ta);
  const auto rb = full_prefill(b, tb);
  const size_t V = size_t(cfg_.vocab_size);
  // Both sequences in one step, in new blocks: a prefill of a next to a prefill of b.
  std::vector<int32_t> ta2 = {5, 6}, tb2 = {7};
  StepInput in = make_step({{&b, &tb2, 0, 3}, {&a, &ta2, 0, 6}}, 8);
  in.logits_rows = {2, 3 + 5};
  std::vector<float> out(2 * V);
  model_->forward(in, *kv_, out.data());
  EXPECT_LT(max_abs_diff(&out[0], &rb[2 * V], V), 1e-4);
  EXPECT_LT(max_abs_diff(&out[V], &ra[5 * V], V), 1e-4);
}

TEST_F(LlamaForwardTest, RejectsInconsistentInput) {
  StepInput in;
  EXPECT_THROW(model_->forward(in, *kv_, nullptr), Error);
}

}  // namespace
}  // namespace herd
