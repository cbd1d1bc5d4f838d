// Grammar masks that arrive after the plan (ExecPlan::late_masks): the LocalExecutor runs the
// forward at once but samples only when the masks are there, and the sampled token obeys them;
// a broken promise (the engine failed while computing them) fails the step instead of
// hanging it. The engine's structured-output tests cover the same path end to end.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>

#include "engine/api/backend_factory.h"
#include "engine/exec/local_executor.h"
#include "engine/exec/model_runner.h"
#include "engine/model/config.h"
#include "engine/model/weights.h"
#include "tests/api/engine_test_util.h"

namespace herd {
namespace {

class LateMasks : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_ = load_model_config(testing::tiny_model_dir());
    backend_ = make_backend("cpu", 1);
    RunnerShape shape;
    shape.num_blocks = 8;
    shape.block_size = 16;
    shape.max_tokens = 16;
    shape.max_seqs = 2;
    auto weights =
        std::make_shared<const LlamaWeights>(load_llama_weights(testing::tiny_model_dir(), cfg_));
    exec_ = std::make_unique<LocalExecutor>(
        std::make_unique<ModelRunner>(cfg_, weights, *backend_, shape, std::vector<int32_t>{}));
  }
  void TearDown() override {
    if (exec_) exec_->shutdown();
  }
  // A 4-token prompt of one sequence, its last row sampled greedily.
  ExecPlan plan() const {
    ExecPlan p;
    p.input.token_ids = {1, 2, 3, 4};
    p.input.positions = {0, 1, 2, 3};
    p.input.slot_mapping = {0, 1, 2, 3};
    p.input.query_start = {0, 4};
    p.input.seq_lens = {4};
    p.input.block_tables = {0};
    p.input.max_blocks_per_seq = 1;
    p.input.logits_rows = {3};
    SamplingParams g;
    g.temperature = 0.0;
    p.samples.push_back(make_sample_spec("r", g, 1, 0, {1, 2, 3, 4}, {}));
    return p;
  }
  std::vector<uint64_t> only(int32_t token) const {
    std::vector<uint64_t> m(size_t((cfg_.vocab_size + 63) / 64), 0);
    m[size_t(token / 64)] |= uint64_t(1) << (token % 64);
    return m;
  }
  ModelConfig cfg_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<LocalExecutor> exec_;
};

TEST_F(LateMasks, SamplingWaitsForTheMasksAndObeysThem) {
  ASSERT_TRUE(exec_->takes_late_masks());
  // The unconstrained greedy token, then a mask that allows one other token only.
  const int32_t greedy = exec_->submit(plan()).get().tokens.at(0);
  const int32_t forced = greedy == 5 ? 6 : 5;
  std::promise<TokenMasks> masks;
  ExecPlan p = plan();
  p.late_masks = masks.get_future().share();
  std::future<ExecResult> f = exec_->submit(std::move(p));
  // Not a timing claim: the result cannot exist before the masks do, however long we wait.
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  masks.set_value(TokenMasks{only(forced)});
  EXPECT_EQ(f.get().tokens.at(0), forced);
}

TEST_F(LateMasks, ABrokenPromiseFailsTheStep) {
  std::future<ExecResult> f;
  {
    std::promise<TokenMasks> masks;
    ExecPlan p = plan();
    p.late_masks = masks.get_future().share();
    f = exec_->submit(std::move(p));
  }  // destroyed unset: what a throw in the engine between submit and set_value leaves
  EXPECT_THROW(f.get(), std::future_error);
  // The executor goes on with the next plan.
  EXPECT_EQ(exec_->submit(plan()).get().tokens.size(), 1u);
}

TEST_F(LateMasks, MasksForTheWrongNumberOfRowsFailTheStep) {
  std::promise<TokenMasks> masks;
  ExecPlan p = plan();
  p.late_masks = masks.get_future().share();
  std::future<ExecResult> f = exec_->submit(std::move(p));
  masks.set_value(TokenMasks{only(5), only(6)});
  EXPECT_THROW(f.get(), std::logic_error);
}

}  // namespace
}  // namespace herd
