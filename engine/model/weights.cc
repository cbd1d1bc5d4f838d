#include "engine/model/weights.h"

#include <algorithm>
#include <set>

#include "engine/common/error.h"
#include "engine/model/safetensors.h"
#include "engine/quant/fp8_config.h"

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
    if (t->dtype == DType::kF8E4M3)
      throw Error(t->file + ": tensor '" + name + "' is F8_E4M3, but herd runs FP8 only in " +
                  "the feed-forward projections (mlp.gate_proj/up_proj/down_proj, with a " +
                  "weight_scale)");
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

  // A tensor of a fixed dtype outside the one-dtype rule (FP8 weights and their F32 scales);
  // `what` says what it is in the error.
  Tensor take_typed(const std::string& name, std::vector<int64_t> shape, DType dtype,
                    const std::string& what) {
    const SafetensorsTensor* t = ck_.find(name);
    if (t == nullptr)
      throw Error(dir_ + ": checkpoint is missing tensor '" + name + "' (" + what + ", shape " +
                  shape_str(shape) + ")");
    if (t->shape != shape || t->dtype != dtype)
      throw Error(t->file + ": tensor '" + name + "' is " + std::string(dtype_name(t->dtype)) +
                  " " + shape_str(t->shape) + " but " + what + " must be " +
                  std::string(dtype_name(dtype)) + " " + shape_str(shape));
    taken_.insert(name);
    Tensor out;
    out.data = const_cast<void*>(t->data);  // read-only mapping; see weights.h
    out.dtype = t->dtype;
    out.rows = shape[0];
    out.cols = shape[1];
    return out;
  }

  bool has(const std::string& name) const { return ck_.find(name) != nullptr; }
  bool is_fp8(const std::string& name) const {
    const SafetensorsTensor* t = ck_.find(name);
    return t != nullptr && t->dtype == DType::kF8E4M3;
  }

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

// The whole checkpoint as views of its mapping (defined below).
LlamaWeights load_whole(const std::string& dir, const ModelConfig& c);

}  // namespace

RankLayout resolve_layout(const ModelConfig& c, const RankLayout& layout) {
  RankLayout l = layout;
  if (l.pp_size == 1 && l.layer_begin == 0 && l.layer_end == 0)
    l.layer_end = int(c.num_hidden_layers);
  const int tp = l.tp_size;
  if (tp < 1 || l.tp_rank < 0 || l.tp_rank >= tp)
    throw InvalidArgument("tensor-parallel-size", "tensor-parallel rank " +
                                                      std::to_string(l.tp_rank) + " of " +
                                                      std::to_string(tp) + " is out of range");
  if (c.num_attention_heads % tp != 0 || c.num_key_value_heads % tp != 0 ||
      c.intermediate_size % tp != 0)
    throw InvalidArgument("tensor-parallel-size",
                          "--tensor-parallel-size " + std::to_string(tp) +
                              " must divide the model's attention heads (" +
                              std::to_string(c.num_attention_heads) + "), KV heads (" +
                              std::to_string(c.num_key_value_heads) + ") and intermediate size (" +
                              std::to_string(c.intermediate_size) + ")");
  if (l.pp_size < 1 || l.pp_rank < 0 || l.pp_rank >= l.pp_size || l.layer_begin < 0 ||
      l.layer_end <= l.layer_begin || l.layer_end > c.num_hidden_layers)
    throw InvalidArgument(
        "pipeline-parallel-size",
        "stage " + std::to_string(l.pp_rank) + " of " + std::to_string(l.pp_size) +
            " with layers [" + std::to_string(l.layer_begin) + ", " + std::to_string(l.layer_end) +
            ") does not fit the model's " + std::to_string(c.num_hidden_layers) + " layers");
  return l;
}

int64_t vocab_shard_rows(const ModelConfig& c, int tp_size) {
  return (c.vocab_size + tp_size - 1) / tp_size;
}

LlamaWeights shard_llama_weights(const LlamaWeights& full, const ModelConfig& c,
                                 const RankLayout& layout) {
  const RankLayout l = resolve_layout(c, layout);
  if (full.layout.tp_size != 1 || full.layout.pp_size != 1 ||
      full.layers.size() != size_t(c.num_hidden_layers))
    throw Error("shard_llama_weights: the input must be the whole model");
  const int64_t tp = l.tp_size, r = l.tp_rank;
  // Shard r of n equal parts along rows / columns.
  auto rows = [&](const Tensor& t) { return t.slice_rows(r * (t.rows / tp), t.rows / tp); };
  auto cols = [&](const Tensor& t) { return t.slice_cols(r * (t.cols / tp), t.cols / tp); };
  LlamaWeights w;
  w.dtype = full.dtype;
  w.activation_scale_ub = full.activation_scale_ub;
  w.layout = l;
  w.storage = full.storage;
  if (l.first_stage()) w.embed_tokens = full.embed_tokens;
  for (int li = l.layer_begin; li < l.layer_end; ++li) {
    const LlamaLayerWeights& f = full.layers[size_t(li)];
    LlamaLayerWeights lw;
    lw.input_layernorm = f.input_layernorm;
    lw.q_proj = rows(f.q_proj);
    lw.k_proj = rows(f.k_proj);
    lw.v_proj = rows(f.v_proj);
    lw.o_proj = cols(f.o_proj);
    lw.post_attention_layernorm = f.post_attention_layernorm;
    lw.gate_proj = rows(f.gate_proj);
    lw.up_proj = rows(f.up_proj);
    lw.down_proj = cols(f.down_proj);
    // FP8 row scales follow their rows: sliced with column-parallel gate/up, whole for
    // row-parallel down_proj (every rank keeps all its output rows).
    if (f.gate_proj_scale.data) lw.gate_proj_scale = rows(f.gate_proj_scale);
    if (f.up_proj_scale.data) lw.up_proj_scale = rows(f.up_proj_scale);
    lw.down_proj_scale = f.down_proj_scale;
    w.layers.push_back(lw);
  }
  if (l.last_stage()) {
    w.norm = full.norm;
    if (c.is_reward_model()) {
      // A score head of a few rows: replicated on every TP rank (no gather needed).
      w.lm_head = full.lm_head;
    } else {
      const int64_t shard = vocab_shard_rows(c, l.tp_size);
      const int64_t begin = std::min(r * shard, c.vocab_size);
      w.lm_head = full.lm_head.slice_rows(begin, std::min(shard, c.vocab_size - begin));
    }
  }
  return w;
}

LlamaWeights load_llama_weights(const std::string& dir, const ModelConfig& c,
                                const RankLayout& layout) {
  LlamaWeights whole = load_whole(dir, c);
  const RankLayout l = resolve_layout(c, layout);
  if (l.tp_size == 1 && l.pp_size == 1) return whole;
  return shard_llama_weights(whole, c, l);
}

namespace {

LlamaWeights load_whole(const std::string& dir, const ModelConfig& c) {
  auto ck = std::make_shared<SafetensorsCheckpoint>(SafetensorsCheckpoint::open_dir(dir));
  TensorTaker take(*ck, dir);
  const Fp8QuantConfig qc = load_fp8_quant_config(dir);
  // A feed-forward projection: BF16 (as every other weight), or fbgemm_fp8 — an F8_E4M3
  // weight [out, in] with an F32 weight_scale [out, 1] — when the checkpoint carries a scale
  // for it or stores it as FP8.
  auto ffn = [&](int64_t l, const std::string& module, std::vector<int64_t> shape, Tensor* w,
                 Tensor* scale) {
    const std::string wname = llama_layer_tensor_name(l, module), sname = wname + "_scale";
    if (!take.has(sname) && !take.is_fp8(wname)) {
      *w = take.take(wname, shape);
      return;
    }
    const std::string mod = "model.layers." + std::to_string(l) + "." + module;
    if (!qc.present)
      throw Error(dir + "/config.json: '" + wname + "' is quantized (F8_E4M3 weight or a " +
                  "weight_scale) but config.json has no quantization_config (fbgemm_fp8)");
    if (qc.not_converted(mod))
      throw Error(dir + ": '" + mod + "' is listed in quantization_config." +
                  "modules_to_not_convert but the checkpoint stores it quantized");
    if (!take.has(sname))
      throw Error(dir + ": FP8 tensor '" + wname + "' has no scale: the checkpoint is missing '" +
                  sname + "' (F32 [" + std::to_string(shape[0]) + ", 1] row scales)");
    *w = take.take_typed(wname, shape, DType::kF8E4M3, "an fbgemm_fp8 weight");
    *scale = take.take_typed(sname, {shape[0], 1}, DType::kF32,
                             "its row scale (fbgemm_fp8 weight_scale)");
  };
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
    ffn(l, "mlp.gate_proj", {ff, h}, &lw.gate_proj, &lw.gate_proj_scale);
    ffn(l, "mlp.up_proj", {ff, h}, &lw.up_proj, &lw.up_proj_scale);
    ffn(l, "mlp.down_proj", {h, ff}, &lw.down_proj, &lw.down_proj_scale);
    w.layers.push_back(lw);
  }
  w.norm = take.take("model.norm.weight", {h});
  if (c.is_reward_model()) {
    // LlamaForSequenceClassification: the score head replaces lm_head (never tied).
    w.lm_head = take.take("score.weight", {c.num_labels, h});
  } else if (c.tie_word_embeddings) {
    // Some tied exports still carry a copy; it must match, and the embedding is used anyway
    // (as transformers does when it ties the weights).
    if (take.has("lm_head.weight")) take.take("lm_head.weight", {c.vocab_size, h});
    w.lm_head = w.embed_tokens;
  } else {
    w.lm_head = take.take("lm_head.weight", {c.vocab_size, h});
  }
  take.check_no_extra();
  w.dtype = take.dtype();
  if (qc.present) w.activation_scale_ub = qc.activation_scale_ub;
  w.storage = ck;
  return w;
}

}  // namespace

}  // namespace herd
