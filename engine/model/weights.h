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
#include "engine/parallel/layout.h"
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
  // Row-wise FP8 feed-forward (fbgemm_fp8, engine/quant): when gate/up/down are F8E4M3,
  // their F32 per-output-row scales [rows, 1]; empty (data null) for unquantized layers.
  Tensor gate_proj_scale, up_proj_scale, down_proj_scale;
};

// The whole model, or one rank's part of it (`layout`, see shard_llama_weights): then
// `layers` holds only the stage's layers [layout.layer_begin, layout.layer_end) (index 0 is
// layer layer_begin) with the rank's tensor-parallel shards, and tensors the rank does not
// use are empty (data == nullptr).
struct LlamaWeights {
  // Every tensor has this dtype, except FP8 feed-forward weights (F8E4M3, with their F32
  // row scales) in the layers that a fbgemm_fp8 checkpoint or --quantization fp8 converted.
  DType dtype = DType::kBF16;
  // The checkpoint's quantization_config.activation_scale_ub (0 = uncapped or no FP8).
  float activation_scale_ub = 0.0f;
  RankLayout layout;    // the part held; the default (tp 1, pp 1) is the whole model
  Tensor embed_tokens;  // [vocab, hidden]; first stage only
  std::vector<LlamaLayerWeights> layers;
  Tensor norm;  // [1, hidden]; last stage only
  // [vocab, hidden], or on a TP rank its vocab_shard_rows() rows (the last shard may be
  // shorter); last stage only. The same rows as embed_tokens when tie_word_embeddings.
  // A reward model (config.is_reward_model()): its `score.weight` [num_labels, hidden],
  // replicated on every TP rank.
  Tensor lm_head;
  // Keeps the mappings behind every view alive.
  std::shared_ptr<const void> storage;
};

// HF tensor names, e.g. llama_layer_tensor_name(3, "self_attn.q_proj") ==
// "model.layers.3.self_attn.q_proj.weight".
std::string llama_layer_tensor_name(int64_t layer, const std::string& module);

// The layout with its layer range filled in and checked against the model: the default
// RankLayout{} (layer_end 0, one stage) means every layer. Throws herd::InvalidArgument
// (param "tensor-parallel-size" / "pipeline-parallel-size") when tp does not divide the
// heads, KV heads or intermediate size, or the layer range does not fit.
RankLayout resolve_layout(const ModelConfig& config, const RankLayout& layout);

// Rows of lm_head each TP rank holds (vocab-parallel): ceil(vocab / tp); the last rank's
// shard is shorter when tp does not divide the vocabulary (its logits are padded, see llama.h).
int64_t vocab_shard_rows(const ModelConfig& config, int tp_size);

// Megatron tensor-parallel / pipeline-stage views of whole-model weights, no copy: q/k/v and
// gate/up are column-parallel (a contiguous slice of output rows), o_proj and down_proj
// row-parallel (a strided slice of input columns, see Tensor::slice_cols), lm_head
// vocab-parallel (rows); norms are replicated; embed_tokens only on the first stage and
// norm + lm_head only on the last. `full` must be whole (full.layout default); the result
// shares its storage.
LlamaWeights shard_llama_weights(const LlamaWeights& full, const ModelConfig& config,
                                 const RankLayout& layout);

// With a layout: the rank's part only (shard_llama_weights of the mapped checkpoint, which
// still checks every tensor's name, shape and dtype but reads only the header: pages of other
// ranks' shards are never touched, so they never become resident in this process).
LlamaWeights load_llama_weights(const std::string& dir, const ModelConfig& config,
                                const RankLayout& layout = {});

}  // namespace herd
