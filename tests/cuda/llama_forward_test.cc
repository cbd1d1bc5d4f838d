// The Llama forward pass (engine/model/llama.cc, unchanged) on the CUDA backend against the
// CPU backend: a mixed prefill step of two sequences, then decode steps, through the paged KV
// cache. Weights are BF16-exact values held as F32, so both backends multiply by the same
// numbers and the gap is the CUDA backend's BF16 activations and KV cache.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>

#include "engine/model/fp8_quantize.h"
#include "engine/model/llama.h"
#include "engine/model/weights.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/model/random_weights.h"

namespace herd {
namespace {

// Llama-3-like in the ways the kernels care about: GQA 4, head_dim 64, llama3 RoPE scaling.
ModelConfig small_config() {
  ModelConfig c;
  c.vocab_size = 1000;
  c.hidden_size = 256;
  c.intermediate_size = 688;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 2;
  c.head_dim = 64;
  c.max_position_embeddings = 131072;
  c.rope_theta = 500000.0;
  c.rope_scaling = {true, 8.0, 1.0, 4.0, 8192};
  c.torch_dtype = DType::kF32;
  return c;
}

std::shared_ptr<LlamaWeights> random_weights(const ModelConfig& c, uint32_t seed) {
  return testing::random_llama_weights(c, seed, /*tied=*/false, /*bf16_exact=*/true);
}

constexpr int kBlock = 16;
constexpr int kMaxBlocks = 8;

struct Seq {
  std::vector<int32_t> ids;
  std::vector<int32_t> table;  // physical blocks
};

// One step: sequence i gets tokens [begin[i], end[i]) of its ids; logits of its last token.
StepInput make_step(const std::vector<Seq>& seqs, const std::vector<int>& begin,
                    const std::vector<int>& end) {
  StepInput in;
  in.max_blocks_per_seq = kMaxBlocks;
  in.query_start.push_back(0);
  for (size_t s = 0; s < seqs.size(); ++s) {
    for (int p = begin[s]; p < end[s]; ++p) {
      in.token_ids.push_back(seqs[s].ids[size_t(p)]);
      in.positions.push_back(p);
      in.slot_mapping.push_back(seqs[s].table[size_t(p / kBlock)] * kBlock + p % kBlock);
    }
    in.query_start.push_back(int32_t(in.token_ids.size()));
    in.logits_rows.push_back(int32_t(in.token_ids.size()) - 1);
    in.seq_lens.push_back(end[s]);
    std::vector<int32_t> row(kMaxBlocks, -1);
    std::copy(seqs[s].table.begin(), seqs[s].table.end(), row.begin());
    in.block_tables.insert(in.block_tables.end(), row.begin(), row.end());
  }
  return in;
}

class CudaLlamaForward : public test::CudaBackendTest {};

// Prefill 37 and 20 tokens (crossing block edges), then decode one token a step, on both
// backends; each step's logits within nmse `bound` of the CPU's.
void run_prefill_then_decode(const ModelConfig& cfg, std::shared_ptr<const LlamaWeights> weights,
                             Backend& gpu, Backend& cpu, double bound) {
  LlamaModel gpu_model(cfg, weights, gpu, 128, 4);
  LlamaModel cpu_model(cfg, weights, cpu, 128, 4);
  KvCache gpu_kv(gpu, cfg, 24, kBlock), cpu_kv(cpu, cfg, 24, kBlock);

  std::mt19937 rng(5);
  std::vector<Seq> seqs = {{{}, {7, 2, 19, 4, 11, 0, 23, 5}}, {{}, {1, 18, 9, 3, 14, 6, 21, 8}}};
  for (Seq& s : seqs)
    for (int i = 0; i < 60; ++i) s.ids.push_back(int32_t(rng() % uint32_t(cfg.vocab_size)));

  const size_t V = size_t(cfg.vocab_size);
  std::vector<float> got(2 * V), want(2 * V);
  std::vector<int> begin = {0, 0}, end = {37, 20};
  for (int step = 0; step < 6; ++step) {
    SCOPED_TRACE(::testing::Message() << "step " << step);
    const StepInput in = make_step(seqs, begin, end);
    gpu_model.forward(in, gpu_kv, got.data());
    cpu_model.forward(in, cpu_kv, want.data());
    test::expect_nmse_below(got, want, bound);
    for (size_t s = 0; s < 2; ++s) {
      begin[s] = end[s];
      end[s] += 1;
    }
  }
}

TEST_F(CudaLlamaForward, PrefillThenDecodeMatchesCpu) {
  const ModelConfig cfg = small_config();
  // The CPU backend with every op's output rounded to BF16 (a throwaway emulation of this
  // backend's activations, run on these inputs) was 2.8e-5 to 3.7e-5 from the plain CPU; the
  // bound leaves 13x for accumulation order and attention's BF16 P. A wrong op is O(0.1-1).
  run_prefill_then_decode(cfg, random_weights(cfg, 11), *gpu, *cpu, 5e-4);
}

// Row-wise FP8 feed-forward in the middle layer (first and last kept, as --quantization fp8
// does): the CUDA FP8 path (activation quantization kernel + cuBLASLt FP8 GEMM) against the
// CPU's. Both quantize the activations with the same recipe, but the GPU's are BF16 before
// quantization, so some values land one E4M3 step apart: the bound is 4x the BF16 test's, a
// first estimate not yet checked on a GPU (the printed nmse says how it lands).
TEST_F(CudaLlamaForward, Fp8FeedForwardMatchesCpu) {
  const ModelConfig cfg = small_config();
  const auto whole = random_weights(cfg, 11);
  auto fp8 = std::make_shared<LlamaWeights>(quantize_llama_weights_fp8(*whole, cfg, {}));
  ASSERT_EQ(fp8->layers[1].gate_proj.dtype, DType::kF8E4M3);
  ASSERT_EQ(fp8->layers[0].gate_proj.dtype, whole->layers[0].gate_proj.dtype);
  run_prefill_then_decode(cfg, fp8, *gpu, *cpu, 2e-3);
}

}  // namespace
}  // namespace herd
