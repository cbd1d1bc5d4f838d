#include "engine/model/weights.h"

#include <set>

#include "engine/common/error.h"
#include "engine/model/safetensors.h"

namespace herd {

std::string llama_layer_tensor_name(int64_t layer, const std::string& module) {
  return "model.layers." + std::to_string(layer) + "." + module + ".weight";
}

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// Looks tensors up by name and checks each one against the shape the config implies and the
// dtype of the first tensor taken; records every name taken so that leftovers are "extra".
class TensorTaker {
 public:
  TensorTaker(const SafetensorsCheckpoint& ck, std::string dir) : ck_(ck), dir_(std::move(dir)) {}

  Tensor take(const std::string& name, std::vector<int64_t> shape) {
    const SafetensorsTensor* t = ck_.find(name);
    if (t == nullptr)
      throw Error(dir_ + ": checkpoint is missing tensor '" + name + "' (expected shape " +
                  shape_str(shape) + ")");
    if (t->shape != shape)
      throw Error(t->file + ": tensor '" + name + "' has shape " + shape_str(t->shape) +
                  " but the config implies " + shape_str(shape));
    if (!dtype_set_) {
      dtype_ = t->dtype;
      dtype_set_ = true;
      first_ = name;
    } else if (t->dtype != dtype_) {
      throw Error(t->file + ": tensor '" + name + "' is " + std::string(dtype_name(t->dtype)) +
                  " but '" + first_ + "' is " + std::string(dtype_name(dtype_)) +
                  " (all weights must share one dtype)");
    }
    taken_.insert(name);
    Tensor out;
    out.data = const_cast<void*>(t->data);  // read-only mapping; see weights.h
    out.dtype = t->dtype;
    out.rows = shape.size() == 1 ? 1 : shape[0];
    out.cols = shape.size() == 1 ? shape[0] : shape[1];
    return out;
  }

  bool has(const std::string& name) const { return ck_.find(name) != nullptr; }

  void check_no_extra() const {
    for (const auto& [name, t] : ck_.tensors()) {
      if (taken_.count(name)) continue;
      // Older transformers saved this non-persistent RoPE buffer; it carries no weights.
      if (name.ends_with(".self_attn.rotary_emb.inv_freq")) continue;
      throw Error(t.file + ": unexpected tensor '" + name + "' (not part of a " +
                  "LlamaForCausalLM with this config.json)");
    }
  }

  DType dtype() const { return dtype_; }

 private:
  const SafetensorsCheckpoint& ck_;
  std::string dir_;
  std::set<std::string> taken_;
  bool dtype_set_ = false;
  DType dtype_ = DType::kBF16;
  std::string first_;
};

}  // namespace

LlamaWeights load_llama_weights(const std::string& dir, const ModelConfig& c) {
  auto ck = std::make_shared<SafetensorsCheckpoint>(SafetensorsCheckpoint::open_dir(dir));
  TensorTaker take(*ck, dir);
  const int64_t h = c.hidden_size, q = c.num_attention_heads * c.head_dim,
                kv = c.num_key_value_heads * c.head_dim, ff = c.intermediate_size;

  LlamaWeights w;
  w.embed_tokens = take.take("model.embed_tokens.weight", {c.vocab_size, h});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    auto name = [l](const char* m) { return llama_layer_tensor_name(l, m); };
    LlamaLayerWeights lw;
    lw.input_layernorm = take.take(name("input_layernorm"), {h});
    lw.q_proj = take.take(name("self_attn.q_proj"), {q, h});
    lw.k_proj = take.take(name("self_attn.k_proj"), {kv, h});
    lw.v_proj = take.take(name("self_attn.v_proj"), {kv, h});
    lw.o_proj = take.take(name("self_attn.o_proj"), {h, q});
    lw.post_attention_layernorm = take.take(name("post_attention_layernorm"), {h});
    lw.gate_proj = take.take(name("mlp.gate_proj"), {ff, h});
    lw.up_proj = take.take(name("mlp.up_proj"), {ff, h});
    lw.down_proj = take.take(name("mlp.down_proj"), {h, ff});
    w.layers.push_back(lw);
  }
  w.norm = take.take("model.norm.weight", {h});
  if (c.tie_word_embeddings) {
    // Some tied exports still carry a copy; it must match, and the embedding is used anyway
    // (as transformers does when it ties the weights).
    if (take.has("lm_head.weight")) take.take("lm_head.weight", {c.vocab_size, h});
    w.lm_head = w.embed_tokens;
  } else {
    w.lm_head = take.take("lm_head.weight", {c.vocab_size, h});
  }
  take.check_no_extra();
  w.dtype = take.dtype();
  w.storage = ck;
  return w;
}

}  // namespace herd
