// The weights of a Hugging Face Llama checkpoint as host tensor views into the memory-mapped
// safetensors files (no copy). load_llama_weights() checks every tensor against the config —
// missing, unexpected, misshapen or wrongly typed tensors and truncated/corrupt files all fail
// with one herd::Error naming the file and the tensor.
//
// Layout (kernels/tensor.h): weights are [out_features, in_features], norms [1, dim]. The data
// pointers are read-only (mapped PROT_READ) even though Tensor::data is not const.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/model/config.h"
#include "kernels/tensor.h"

namespace herd {

struct LlamaLayerWeights {
  Tensor input_layernorm;           // [1, hidden]
  Tensor q_proj;                    // [heads * head_dim, hidden]
  Tensor k_proj;                    // [kv_heads * head_dim, hidden]
  Tensor v_proj;                    // [kv_heads * head_dim, hidden]
  Tensor o_proj;                    // [hidden, heads * head_dim]
  Tensor post_attention_layernorm;  // [1, hidden]
  Tensor gate_proj;                 // [intermediate, hidden]
  Tensor up_proj;                   // [intermediate, hidden]
  Tensor down_proj;                 // [hidden, intermediate]
};

struct LlamaWeights {
  DType dtype = DType::kBF16;  // every tensor has this dtype
  Tensor embed_tokens;         // [vocab, hidden]
  std::vector<LlamaLayerWeights> layers;
  Tensor norm;     // [1, hidden]
  Tensor lm_head;  // [vocab, hidden]; same view as embed_tokens when tie_word_embeddings
  // Keeps the mappings behind every view alive.
  std::shared_ptr<const void> storage;
};

// HF tensor names, e.g. llama_layer_tensor_name(3, "self_attn.q_proj") ==
// "model.layers.3.self_attn.q_proj.weight".
std::string llama_layer_tensor_name(int64_t layer, const std::string& module);

LlamaWeights load_llama_weights(const std::string& dir, const ModelConfig& config);

}  // namespace herd
