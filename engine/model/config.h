// ModelConfig: what the engine needs from a Hugging Face Llama checkpoint's config.json and
// generation_config.json. Parsing (load_model_config) checks every field and names the file
// and field at fault in a herd::Error.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/common/dtype.h"

namespace herd {

struct RopeScaling {
  // rope_type "llama3" (Llama 3.1/3.2); when absent, plain RoPE.
  bool llama3 = false;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 1.0;
  int64_t original_max_position_embeddings = 0;
};

struct ModelConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // hidden_size / num_attention_heads unless config says otherwise
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  DType torch_dtype = DType::kBF16;
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;  // config.json eos + generation_config.json eos, deduped
  // generation_config.json defaults (used when a request does not say)
  double default_temperature = 1.0;
  double default_top_p = 1.0;
  // LlamaForSequenceClassification (a reward model): num_labels > 0, a `score.weight`
  // [num_labels, hidden] head instead of lm_head, and the model scores prompts instead of
  // generating (the head applied to the final-normed hidden state of the last token).
  int64_t num_labels = 0;
  std::vector<std::string> id2label;  // [num_labels] (LABEL_i when config.json has none)
  bool is_reward_model() const { return num_labels > 0; }
  // Rows of the output head: vocab_size for a causal LM, num_labels for a reward model.
  int64_t head_rows() const { return is_reward_model() ? num_labels : vocab_size; }
};

// Reads DIR/config.json and, if present, DIR/generation_config.json.
ModelConfig load_model_config(const std::string& dir);

// Inverse frequencies for rotate-half RoPE, [head_dim / 2], with llama3 scaling applied when
// configured (same formula as transformers' _compute_llama3_parameters).
std::vector<float> rope_inv_freq(const ModelConfig& c);

}  // namespace herd
