// `herd plan` (engine/model/memory_plan.h): the per-rank numbers against values worked out by
// hand from the Llama 3 shapes, and the command itself — the paper's point (Llama 3 §6.1) that
// 405B in BF16 does not fit on one node of 8 x 80 GB but does on two with PP 2, its exit
// statuses and its usage errors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/common/error.h"
#include "engine/model/make_model.h"
#include "engine/model/memory_plan.h"
#include "tests/common/run_command.h"

namespace herd {
namespace {

constexpr int64_t kGiB = int64_t(1) << 30;

PlanOptions options(int tp, int pp, double gib = 80) {
  PlanOptions o;
  o.tensor_parallel_size = tp;
  o.pipeline_parallel_size = pp;
  o.gpu_memory_gib = gib;
  return o;
}

// --- hand-computed numbers -------------------------------------------------------------
//
// 405B: h 16384, q = 128 x 128 = 16384, kv = 8 x 128 = 1024, i 53248, V 128256, BF16 (2 B).
// One layer on one of 8 TP ranks:
//   attention (h q + 2 h kv + q h) / 8 x 2 = (268435456 + 33554432 + 268435456) / 8 x 2
//             = 142606336
//   ffn       3 h (i / 8) x 2 = 3 x 16384 x 6656 x 2 = 654311424
//   norms     2 h x 2 = 65536
constexpr int64_t k405Attn = 142606336, k405Ffn = 654311424, k405Norms = 65536;
constexpr int64_t k405Embedding = 128256LL * 16384 * 2;     // 4202692608, replicated
constexpr int64_t k405LmHead = (128256LL / 8) * 16384 * 2;  // 525336576, vocab-split

TEST(MemoryPlan, Llama405bTp8Pp2Weights) {
  const MemoryPlan p = plan_memory(plan_shape_named("llama3-405b"), options(8, 2));
  ASSERT_EQ(p.stages.size(), 2u);
  const StagePlan& s0 = p.stages[0];
  const StagePlan& s1 = p.stages[1];
  // 126 layers over 2 stages: 63 + 63 (engine/parallel/layout.h).
  EXPECT_EQ(s0.layer_begin, 0);
  EXPECT_EQ(s0.layer_end, 63);
  EXPECT_EQ(s1.layer_begin, 63);
  EXPECT_EQ(s1.layer_end, 126);
  EXPECT_EQ(s0.first_rank, 0);
  EXPECT_EQ(s0.last_rank, 7);
  EXPECT_EQ(s1.first_rank, 8);
  EXPECT_EQ(s1.last_rank, 15);

  EXPECT_EQ(s0.weights.attention, 63 * k405Attn);
  EXPECT_EQ(s0.weights.ffn, 63 * k405Ffn);
  EXPECT_EQ(s0.weights.norms, 63 * k405Norms);
  EXPECT_EQ(s0.weights.embedding, k405Embedding);
  EXPECT_EQ(s0.weights.lm_head, 0);
  EXPECT_EQ(s0.weights.total(), 54412640256);  // 50.68 GiB

  EXPECT_EQ(s1.weights.embedding, 0);
  EXPECT_EQ(s1.weights.norms, 63 * k405Norms + 16384 * 2);  // + final norm
  EXPECT_EQ(s1.weights.lm_head, k405LmHead);
  EXPECT_EQ(s1.weights.total(), 50735316992);

  // Whole model: 126 x 6375407616 + embedding + lm_head + final norm = 811.7 GB, the paper's
  // "810 GB".
  EXPECT_EQ(p.model_weight_bytes, 811706777600);
}

TEST(MemoryPlan, Llama405bTp8Pp2KvAndActivations) {
  const MemoryPlan p = plan_memory(plan_shape_named("llama3-405b"), options(8, 2));
  const StagePlan& s0 = p.stages[0];
  const StagePlan& s1 = p.stages[1];
  // KV block: 63 layers x 2 x 16 tokens x (8 / 8) KV heads x 128 x 2 B.
  EXPECT_EQ(s0.kv_bytes_per_block, 516096);
  EXPECT_EQ(s1.kv_bytes_per_block, 516096);
  // Activations, T 2048, a 2: T a (2h + (q + 2kv)/8 + q/8 + 3 i/8) = 4096 x 57088 = 233832448;
  // PP send/receive: 2 x M 2 x T x h x a = 268435456.
  EXPECT_EQ(s0.activation_bytes, 233832448 + 268435456);
  // Last stage adds FP32 logits: 256 seqs x 4 x (16032 + 128256).
  EXPECT_EQ(s1.activation_bytes, 233832448 + 268435456 + 147750912);
  // Budget 80 GiB x 0.9 = 72 GiB; KV = budget - weights - activations - 1 GiB reserve.
  EXPECT_EQ(s0.budget_bytes, 72 * kGiB);
  EXPECT_EQ(s0.kv_bytes, 72 * kGiB - 54412640256 - 502267904 - kGiB);
  EXPECT_EQ(s0.num_blocks, s0.kv_bytes / 516096);
  EXPECT_EQ(s0.num_blocks, 41311);
  // The pool is the smaller stage's: every stage allocates the same block ids.
  EXPECT_EQ(p.num_blocks, std::min(s0.num_blocks, s1.num_blocks));
  EXPECT_EQ(p.kv_tokens, p.num_blocks * 16);
  EXPECT_EQ(p.blocks_per_full_sequence, 131072 / 16);
  EXPECT_TRUE(p.fits) << p.verdict;
  EXPECT_EQ(p.verdict.rfind("fits:", 0), 0u) << p.verdict;
}

TEST(MemoryPlan, Llama405bOneNodeDoesNotFit) {
  const MemoryPlan p = plan_memory(plan_shape_named("llama3-405b"), options(8, 1));
  ASSERT_EQ(p.stages.size(), 1u);
  const StagePlan& s = p.stages[0];
  EXPECT_EQ(s.weights.total(),
            126 * (k405Attn + k405Ffn + k405Norms) + k405Embedding + 16384 * 2 + k405LmHead);
  EXPECT_GT(s.weights.total(), 72 * kGiB);
  EXPECT_FALSE(p.fits);
  EXPECT_EQ(p.num_blocks, 0);
  EXPECT_NE(p.verdict.find("does not fit"), std::string::npos) << p.verdict;
  EXPECT_NE(p.verdict.find("of weights per GPU"), std::string::npos) << p.verdict;
}

TEST(MemoryPlan, Llama8bOneGpu) {
  const MemoryPlan p = plan_memory(plan_shape_named("llama3-8b"), options(1, 1));
  ASSERT_EQ(p.stages.size(), 1u);
  const StagePlan& s = p.stages[0];
  // One layer: attention (4096 x 4096 x 2 + 2 x 4096 x 1024) x 2 = 83886080, ffn 3 x 4096 x
  // 14336 x 2 = 352321536, norms 16384.
  EXPECT_EQ(s.weights.attention, 32 * 83886080LL);
  EXPECT_EQ(s.weights.ffn, 32 * 352321536LL);
  EXPECT_EQ(s.weights.embedding, 128256LL * 4096 * 2);
  EXPECT_EQ(s.weights.lm_head, 128256LL * 4096 * 2);  // untied: its own matrix
  EXPECT_EQ(s.weights.total(), 16060522496);
  EXPECT_EQ(p.model_weight_bytes, 16060522496);  // TP 1: the rank holds the whole model
  EXPECT_EQ(s.kv_bytes_per_block, 32 * 2 * 16 * 8 * 128 * 2);
  EXPECT_TRUE(p.fits) << p.verdict;
  // It fits on a 24 GiB card too, with a shorter context.
  PlanOptions small = options(1, 1, 24);
  small.max_model_len = 8192;
  EXPECT_TRUE(plan_memory(plan_shape_named("llama3-8b"), small).fits);
}

TEST(MemoryPlan, Llama70bNeedsTp) {
  // 70B BF16 is ~141 GB: not one 80 GiB GPU, but 4 of them.
  EXPECT_FALSE(plan_memory(plan_shape_named("llama3-70b"), options(1, 1)).fits);
  EXPECT_TRUE(plan_memory(plan_shape_named("llama3-70b"), options(4, 1)).fits);
}

TEST(MemoryPlan, Fp8FfnKeepsFirstAndLastLayerBf16) {
  PlanOptions o = options(8, 2);
  o.fp8_ffn = true;
  const MemoryPlan p = plan_memory(plan_shape_named("llama3-405b"), o);
  // Layer 0 is on stage 0, layer 125 on stage 1: each stage has 62 FP8 layers.
  EXPECT_EQ(p.stages[0].fp8_layers, 62);
  EXPECT_EQ(p.stages[1].fp8_layers, 62);
  // FP8 layer on a rank: 3 x 16384 x 6656 bytes + FP32 row scales (2 x 6656 + 16384) x 4.
  const int64_t fp8_ffn = 3LL * 16384 * 6656 + 4 * (2 * 6656 + 16384);
  EXPECT_EQ(fp8_ffn, 327274496);
  EXPECT_EQ(p.stages[0].weights.ffn, 62 * fp8_ffn + k405Ffn);
  EXPECT_EQ(p.stages[1].weights.ffn, 62 * fp8_ffn + k405Ffn);
  // Attention stays BF16.
  EXPECT_EQ(p.stages[0].weights.attention, 63 * k405Attn);
  // With FP8 FFNs 405B fits one node of 8 x 80 GB, the point of the paper's FP8 inference
  // (§6.2): ~60 GiB of weights per GPU instead of ~98.
  const MemoryPlan one_node = plan_memory(plan_shape_named("llama3-405b"), [] {
    PlanOptions q = options(8, 1);
    q.fp8_ffn = true;
    return q;
  }());
  EXPECT_TRUE(one_node.fits) << one_node.verdict;
}

TEST(MemoryPlan, TiedEmbeddingsShareTheHeadOnlyOnOneStage) {
  const PlanShape s = plan_shape_named("llama3.2-1b");
  ASSERT_TRUE(s.tied_embeddings);
  const MemoryPlan one = plan_memory(s, options(1, 1));
  EXPECT_EQ(one.stages[0].weights.lm_head, 0);
  // With PP the last stage needs its own copy of the (vocab-split) matrix.
  const MemoryPlan two = plan_memory(s, options(2, 2));
  EXPECT_EQ(two.stages[1].weights.lm_head, (128256LL / 2) * 2048 * 2);
}

// A reward model (LlamaForSequenceClassification) has a [num_labels, hidden] score head,
// replicated on the last stage, instead of the vocabulary-sized lm_head; its logits workspace
// holds num_labels scores, not a vocabulary row.
TEST(MemoryPlan, RewardModelCountsItsScoreHeadNotAnLmHead) {
  const PlanShape rm = plan_shape_named("llama3-8b-rm");
  const PlanShape lm = plan_shape_named("llama3-8b");
  ASSERT_EQ(rm.num_labels, 1);
  ASSERT_EQ(lm.num_labels, 0);
  const MemoryPlan r = plan_memory(rm, options(2, 2));
  const MemoryPlan l = plan_memory(lm, options(2, 2));
  EXPECT_EQ(r.stages[1].weights.lm_head, 1 * 4096 * 2);  // not vocab-split: on every TP rank
  EXPECT_EQ(l.stages[1].weights.lm_head, (128256LL / 2) * 4096 * 2);
  EXPECT_EQ(l.model_weight_bytes - r.model_weight_bytes, (128256LL - 1) * 4096 * 2);
  const int64_t seqs = r.options.max_num_seqs;
  EXPECT_EQ(l.stages[1].activation_bytes - r.stages[1].activation_bytes,
            seqs * 4 * (128256LL / 2 + 128256LL - 2));
  EXPECT_EQ(r.stages[0].activation_bytes, l.stages[0].activation_bytes);  // no head there
}

TEST(MemoryPlan, KvDtypeAndBlockSize) {
  PlanOptions o = options(8, 2);
  o.kv_dtype = DType::kF32;
  o.block_size = 32;
  const MemoryPlan p = plan_memory(plan_shape_named("llama3-405b"), o);
  EXPECT_EQ(p.stages[0].kv_bytes_per_block, 63 * 2 * 32 * 1 * 128 * 4);
  EXPECT_EQ(kv_bytes_per_block(plan_shape_named("llama3-70b"), 80, 8, 16, DType::kBF16),
            80 * 2 * 16 * 1 * 128 * 2);
}

TEST(MemoryPlan, ShortContextIsTheVerdict) {
  // A budget that leaves room for weights but not for one 128k-token sequence.
  PlanOptions o = options(1, 1, 20);
  const MemoryPlan p = plan_memory(plan_shape_named("llama3-8b"), o);
  EXPECT_FALSE(p.fits);
  EXPECT_NE(p.verdict.find("--max-model-len"), std::string::npos) << p.verdict;
  o.max_model_len = 4096;
  EXPECT_TRUE(plan_memory(plan_shape_named("llama3-8b"), o).fits);
}

TEST(MemoryPlan, NamedShapeMatchesMakeModelConfig) {
  // The plan's shape table is make-model's: same numbers as its config.json.
  const auto j = make_model_config_json("llama3-70b", DType::kBF16);
  const PlanShape s = plan_shape_named("llama3-70b");
  EXPECT_EQ(s.hidden_size, 8192);
  EXPECT_EQ(s.num_layers, 80);
  EXPECT_EQ(s.num_heads, 64);
  EXPECT_EQ(s.num_kv_heads, 8);
  EXPECT_EQ(s.intermediate_size, 28672);
  EXPECT_EQ(s.vocab_size, j.at("vocab_size").get<int64_t>());
}

void expect_invalid(const PlanShape& s, const PlanOptions& o, const std::string& param) {
  try {
    plan_memory(s, o);
    ADD_FAILURE() << "no error for " << param;
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.param(), param) << e.what();
  }
}

TEST(MemoryPlan, BadOptions) {
  const PlanShape s = plan_shape_named("llama3-405b");
  expect_invalid(s, options(3, 1), "tensor-parallel-size");      // 128 heads % 3
  expect_invalid(s, options(16, 1), "tensor-parallel-size");     // 8 KV heads % 16
  expect_invalid(s, options(8, 127), "pipeline-parallel-size");  // 126 layers
  expect_invalid(s, options(8, 2, 0), "gpu-memory-gb");
  expect_invalid(s, options(8, 2, -80), "gpu-memory-gb");
  PlanOptions o = options(8, 2);
  o.gpu_memory_utilization = 1.5;
  expect_invalid(s, o, "gpu-memory-utilization");
  o = options(8, 2);
  o.max_num_batched_tokens = 0;
  expect_invalid(s, o, "max-num-batched-tokens");
  try {
    plan_shape_named("llama3-1t");
    ADD_FAILURE();
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.param(), "shape");
    EXPECT_NE(std::string(e.what()).find("llama3-405b"), std::string::npos) << e.what();
  }
}

// --- the command -------------------------------------------------------------------------

class PlanCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(HERD_BINARY)) GTEST_SKIP() << HERD_BINARY << " not built";
  }
  // stdout and stderr together; *code is the exit status.
  static std::string plan(const std::string& flags, int* code) {
    int status = 0;
    const std::string out =
        testing::run_command(std::string(HERD_BINARY) + " plan " + flags + " 2>&1", &status);
    *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return out;
  }
};

TEST_F(PlanCli, Llama405bOneNodeDoesNotFit) {
  int code = 0;
  const std::string out =
      plan("--shape llama3-405b --tp 8 --pp 1 --dtype bf16 --gpu-memory-gb 80", &code);
  EXPECT_EQ(code, 3) << out;
  EXPECT_NE(out.find("verdict: does not fit"), std::string::npos) << out;
  EXPECT_NE(out.find("811.7 GB"), std::string::npos) << out;  // the paper's ~810 GB
}

TEST_F(PlanCli, Llama405bTwoNodesFit) {
  int code = 0;
  const std::string out = plan(
      "--shape llama3-405b --tensor-parallel-size 8 --pipeline-parallel-size 2 --gpu-memory-gb 80",
      &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("stage 0: ranks 0-7, layers 0-62"), std::string::npos) << out;
  EXPECT_NE(out.find("stage 1: ranks 8-15, layers 63-125"), std::string::npos) << out;
  EXPECT_NE(out.find("KV per block  516096 bytes"), std::string::npos) << out;
  EXPECT_NE(out.find("verdict: fits"), std::string::npos) << out;
}

// Issue 11: 405B with FP8 feed-forward weights fits one 8 x 80 GB node at TP 8.
TEST_F(PlanCli, Llama405bFp8FitsOneNode) {
  int code = 0;
  const std::string out =
      plan("--shape llama3-405b --tp 8 --pp 1 --dtype fp8 --gpu-memory-gb 80", &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("verdict: fits"), std::string::npos) << out;
  EXPECT_NE(out.find("124 layers FP8"), std::string::npos) << out;
}

TEST_F(PlanCli, Llama8bOneGpuFits) {
  int code = 0;
  const std::string out = plan("--shape llama3-8b --gpu-memory-gb 80", &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("verdict: fits"), std::string::npos) << out;
}

TEST_F(PlanCli, JsonMatchesTheLibrary) {
  int code = 0;
  int status = 0;
  const std::string out =
      testing::run_command(std::string(HERD_BINARY) +
                               " plan --shape llama3-405b --tp 8 --pp 2 --gpu-memory-gb 80 "
                               "--json 2>/dev/null",
                           &status);
  code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  EXPECT_EQ(code, 0) << out;
  const auto j = nlohmann::json::parse(out);
  const MemoryPlan p = plan_memory(plan_shape_named("llama3-405b"), options(8, 2));
  EXPECT_EQ(j.at("fits").get<bool>(), true);
  EXPECT_EQ(j.at("options").at("world_size").get<int>(), 16);
  ASSERT_EQ(j.at("stages").size(), 2u);
  EXPECT_EQ(j.at("stages")[0].at("weight_bytes").get<int64_t>(), p.stages[0].weights.total());
  EXPECT_EQ(j.at("stages")[1].at("num_blocks").get<int64_t>(), p.stages[1].num_blocks);
  EXPECT_EQ(j.at("kv_tokens").get<int64_t>(), p.kv_tokens);
}

TEST_F(PlanCli, ModelDirAgreesWithShape) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("herd_plan_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.json") << make_model_config_json("llama3-8b", DType::kBF16).dump();
  int a = 0, b = 0;
  std::string by_dir = plan("--model " + dir.string() + " --gpu-memory-gb 40 --json", &a);
  std::string by_shape = plan("--shape llama3-8b --gpu-memory-gb 40 --json", &b);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(a, 0) << by_dir;
  EXPECT_EQ(b, 0) << by_shape;
  auto jd = nlohmann::json::parse(by_dir), js = nlohmann::json::parse(by_shape);
  jd["model"].erase("name");
  js["model"].erase("name");
  EXPECT_EQ(jd, js);
}

TEST_F(PlanCli, BadFlagsExit2WithOneMessage) {
  const struct {
    const char* flags;
    const char* message;
  } cases[] = {
      {"--shape llama3-405b --tp 3 --gpu-memory-gb 80", "must divide the model's attention heads"},
      {"--shape llama3-405b --tp 8 --pp 200 --gpu-memory-gb 80", "exceeds the model's 126 layers"},
      {"--shape llama3-1t --gpu-memory-gb 80", "unknown --shape 'llama3-1t'"},
      {"--shape llama3-8b --gpu-memory-gb 0", "--gpu-memory-gb must be > 0"},
      {"--shape llama3-8b --gpu-memory-gb -8", "--gpu-memory-gb must be > 0"},
      {"--shape llama3-8b", "missing required flag --gpu-memory-gb"},
      {"--gpu-memory-gb 80", "give exactly one of --shape NAME or --model DIR"},
      {"--shape llama3-8b --tp 2 --tensor-parallel-size 2 --gpu-memory-gb 80", "not both"},
      {"--shape llama3-8b --dtype int4 --gpu-memory-gb 80",
       "--dtype must be bf16, f16, f32 or fp8"},
      {"--shape llama3-8b --gpu-memory-gb 80 --frobnicate", "unknown flag --frobnicate"},
  };
  for (const auto& c : cases) {
    int code = 0;
    const std::string out = plan(c.flags, &code);
    EXPECT_EQ(code, 2) << c.flags << "\n" << out;
    EXPECT_NE(out.find(c.message), std::string::npos) << c.flags << "\n" << out;
    EXPECT_EQ(out.rfind("herd plan: ", 0), 0u) << out;  // the error line comes first
  }
}

}  // namespace
}  // namespace herd
