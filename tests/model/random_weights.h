// Random fp32 Llama weights held in memory (no checkpoint): the forward tests of the CPU model,
// the CUDA backend and the TP x PP model draw them the same way. Normal values, scaled so that
// activations stay finite through every layer; `bf16_exact` rounds each value to bf16 first
// (the CUDA backend stores weights in bf16, so both backends then see the same numbers).
#pragma once

#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "engine/common/dtype.h"
#include "engine/model/config.h"
#include "engine/model/weights.h"

namespace herd::testing {

inline std::shared_ptr<LlamaWeights> random_llama_weights(const ModelConfig& c, uint32_t seed,
                                                          bool tied = false,
                                                          bool bf16_exact = false) {
  auto store = std::make_shared<std::vector<std::vector<float>>>();
  std::mt19937 rng(seed);
  auto make = [&](int64_t rows, int64_t cols, float stddev, float mean = 0.0f) {
    std::normal_distribution<float> d(mean, stddev);
    store->emplace_back(size_t(rows * cols));
    for (float& x : store->back()) x = bf16_exact ? bf16_to_f32(f32_to_bf16(d(rng))) : d(rng);
    return Tensor{store->back().data(), DType::kF32, rows, cols};
  };
  auto w = std::make_shared<LlamaWeights>();
  w->dtype = DType::kF32;
  const int64_t d = c.hidden_size, q = c.num_attention_heads * c.head_dim,
                kv = c.num_key_value_heads * c.head_dim, f = c.intermediate_size;
  w->embed_tokens = make(c.vocab_size, d, 1.0f);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    LlamaLayerWeights lw;
    lw.input_layernorm = make(1, d, 0.1f, 1.0f);
    lw.q_proj = make(q, d, 1.0f / std::sqrt(float(d)));
    lw.k_proj = make(kv, d, 1.0f / std::sqrt(float(d)));
    lw.v_proj = make(kv, d, 1.0f / std::sqrt(float(d)));
    lw.o_proj = make(d, q, 0.5f / std::sqrt(float(q)));
    lw.post_attention_layernorm = make(1, d, 0.1f, 1.0f);
    lw.gate_proj = make(f, d, 1.0f / std::sqrt(float(d)));
    lw.up_proj = make(f, d, 1.0f / std::sqrt(float(d)));
    lw.down_proj = make(d, f, 0.5f / std::sqrt(float(f)));
    w->layers.push_back(lw);
  }
  w->norm = make(1, d, 0.1f, 1.0f);
  w->lm_head = tied ? w->embed_tokens : make(c.vocab_size, d, 1.0f / std::sqrt(float(d)));
  w->storage = store;
  return w;
}

}  // namespace herd::testing
