#include "engine/model/llama.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/common/error.h"
#include "engine/model/weights.h"

namespace herd {

// ---------------------------------------------------------------- KvCache

size_t KvCache::bytes_per_block(const ModelConfig& cfg, int block_size, DType kv_dtype) {
  return size_t(cfg.num_hidden_layers) * 2 * size_t(block_size) *
         size_t(cfg.num_key_value_heads * cfg.head_dim) * dtype_size(kv_dtype);
}

KvCache::KvCache(Backend& backend, const ModelConfig& cfg, int64_t num_blocks, int block_size)
    : backend_(backend), num_blocks_(num_blocks), block_size_(block_size) {
  const DType dt = backend.kv_dtype();
  const int64_t rows = num_blocks * block_size;
  const int64_t cols = cfg.num_key_value_heads * cfg.head_dim;
  layers_.resize(size_t(cfg.num_hidden_layers));
  for (auto& l : layers_) {
    for (Tensor* t : {&l.k, &l.v}) {
      t->dtype = dt;
      t->rows = rows;
      t->cols = cols;
      t->data = backend.allocate(t->bytes());
    }
    l.block_size = block_size;
    l.num_kv_heads = int(cfg.num_key_value_heads);
    l.head_dim = int(cfg.head_dim);
  }
}

KvCache::~KvCache() {
  for (auto& l : layers_) {
    backend_.deallocate(l.k.data);
    backend_.deallocate(l.v.data);
  }
}

// ---------------------------------------------------------------- LlamaModel

LlamaModel::LlamaModel(const ModelConfig& cfg, std::shared_ptr<const LlamaWeights> weights,
                       Backend& backend, int max_tokens, int max_seqs)
    : cfg_(cfg),
      weights_(std::move(weights)),
      backend_(backend),
      max_tokens_(max_tokens),
      max_seqs_(max_seqs) {
  if (max_tokens < 1 || max_seqs < 1) throw Error("LlamaModel: max_tokens and max_seqs must be >= 1");
  const LlamaWeights& w = *weights_;
  embed_ = backend.adopt_weight(w.embed_tokens);
  final_norm_ = backend.adopt_weight(w.norm);
  lm_head_ = cfg.tie_word_embeddings ? embed_ : backend.adopt_weight(w.lm_head);
  for (const auto& lw : w.layers) {
    Layer l;
    l.attn_norm = backend.adopt_weight(lw.input_layernorm);
    l.wq = backend.adopt_weight(lw.q_proj);
    l.wk = backend.adopt_weight(lw.k_proj);
    l.wv = backend.adopt_weight(lw.v_proj);
    l.wo = backend.adopt_weight(lw.o_proj);
    l.ffn_norm = backend.adopt_weight(lw.post_attention_layernorm);
    l.w_gate = backend.adopt_weight(lw.gate_proj);
    l.w_up = backend.adopt_weight(lw.up_proj);
    l.w_down = backend.adopt_weight(lw.down_proj);
    layers_.push_back(l);
  }

  const DType act = backend.activation_dtype();
  const int64_t d = cfg.hidden_size, hd = cfg.head_dim;
  const int64_t qd = cfg.num_attention_heads * hd, kvd = cfg.num_key_value_heads * hd;
  const int64_t ffn = cfg.intermediate_size, T = max_tokens;
  residual_ = scratch(act, T, d);
  normed_ = scratch(act, T, d);
  q_ = scratch(act, T, qd);
  k_ = scratch(act, T, kvd);
  v_ = scratch(act, T, kvd);
  attn_out_ = scratch(act, T, qd);
  proj_out_ = scratch(act, T, d);
  gate_ = scratch(act, T, ffn);
  up_ = scratch(act, T, ffn);
  act_ = scratch(act, T, ffn);
  last_hidden_ = scratch(act, max_seqs, d);
  last_proj_ = scratch(act, max_seqs, d);
  logits_dev_ = scratch(act, max_seqs, cfg.vocab_size);
  logits_f32_ = scratch(DType::kF32, max_seqs, cfg.vocab_size);
  d_ids_ = scratch_ints(size_t(T));
  d_pos_ = scratch_ints(size_t(T));
  d_slots_ = scratch_ints(size_t(T));
  d_qstart_ = scratch_ints(size_t(max_seqs) + 1);
  d_seqlens_ = scratch_ints(size_t(max_seqs));
  d_rows_ = scratch_ints(size_t(max_seqs));

  const std::vector<float> inv_freq = rope_inv_freq(cfg);
  d_inv_freq_ = static_cast<float*>(backend.allocate(inv_freq.size() * sizeof(float)));
  allocations_.push_back(d_inv_freq_);
  backend.upload(d_inv_freq_, inv_freq.data(), inv_freq.size() * sizeof(float));
}

LlamaModel::~LlamaModel() {
  for (void* p : allocations_) backend_.deallocate(p);
  if (d_block_tables_) backend_.deallocate(d_block_tables_);
  backend_.release_weight(embed_);
  backend_.release_weight(final_norm_);
  if (!cfg_.tie_word_embeddings) backend_.release_weight(lm_head_);
  for (const auto& l : layers_)
    for (const Tensor* t : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm, &l.w_gate,
                            &l.w_up, &l.w_down})
      backend_.release_weight(*t);
}

Tensor LlamaModel::scratch(DType dt, int64_t rows, int64_t cols) {
  Tensor t{nullptr, dt, rows, cols};
  t.data = backend_.allocate(t.bytes());
  allocations_.push_back(t.data);
  return t;
}

int32_t* LlamaModel::scratch_ints(size_t n) {
  void* p = backend_.allocate(n * sizeof(int32_t));
  allocations_.push_back(p);
  return static_cast<int32_t*>(p);
}

void LlamaModel::forward(const StepInput& in, KvCache& kv, float* logits) {
  const int64_t T = int64_t(in.token_ids.size());
  const int S = int(in.seq_lens.size());
  const int64_t R = int64_t(in.logits_rows.size());
  if (T < 1 || T > max_tokens_ || S < 1 || S > max_seqs_ || R > max_seqs_ ||
      in.positions.size() != size_t(T) || in.slot_mapping.size() != size_t(T) ||
      in.query_start.size() != size_t(S) + 1 ||
      in.block_tables.size() != size_t(S) * size_t(in.max_blocks_per_seq))
    throw Error("LlamaModel::forward: inconsistent step input");

  // Upload the step's index arrays once.
  auto up = [&](int32_t* dst, const std::vector<int32_t>& src) {
    if (!src.empty()) backend_.upload(dst, src.data(), src.size() * sizeof(int32_t));
  };
  up(d_ids_, in.token_ids);
  up(d_pos_, in.positions);
  up(d_slots_, in.slot_mapping);
  up(d_qstart_, in.query_start);
  up(d_seqlens_, in.seq_lens);
  up(d_rows_, in.logits_rows);
  if (in.block_tables.size() > block_tables_capacity_) {
    if (d_block_tables_) backend_.deallocate(d_block_tables_);
    block_tables_capacity_ = std::max(in.block_tables.size(), block_tables_capacity_ * 2);
    d_block_tables_ =
        static_cast<int32_t*>(backend_.allocate(block_tables_capacity_ * sizeof(int32_t)));
  }
  up(d_block_tables_, in.block_tables);

  AttentionBatch batch;
  batch.num_seqs = S;
  batch.num_tokens = int(T);
  batch.max_blocks_per_seq = in.max_blocks_per_seq;
  batch.max_seq_len = *std::max_element(in.seq_lens.begin(), in.seq_lens.end());
  batch.query_start = d_qstart_;
  batch.seq_lens = d_seqlens_;
  batch.block_tables = d_block_tables_;

  const float eps = float(cfg_.rms_norm_eps);
  const int hq = int(cfg_.num_attention_heads), hkv = int(cfg_.num_key_value_heads);
  const int hd = int(cfg_.head_dim);
  const float scale = 1.0f / std::sqrt(float(hd));

  Tensor x = residual_.slice_rows(0, T), h = normed_.slice_rows(0, T);
  Tensor q = q_.slice_rows(0, T), k = k_.slice_rows(0, T), v = v_.slice_rows(0, T);
  Tensor attn = attn_out_.slice_rows(0, T), proj = proj_out_.slice_rows(0, T);
  Tensor gate = gate_.slice_rows(0, T), upv = up_.slice_rows(0, T), act = act_.slice_rows(0, T);

  backend_.embedding(embed_, d_ids_, x);
  for (size_t li = 0; li < layers_.size(); ++li) {
    const Layer& l = layers_[li];
    // Attention block. The residual add of the previous block is fused into this norm.
    if (li == 0)
      backend_.rms_norm(x, l.attn_norm, eps, h);
    else
      backend_.add_rms_norm(x, proj, l.attn_norm, eps, h);
    backend_.linear(h, l.wq, q);
    backend_.linear(h, l.wk, k);
    backend_.linear(h, l.wv, v);
    backend_.rope(q, hq, hd, d_pos_, d_inv_freq_);
    backend_.rope(k, hkv, hd, d_pos_, d_inv_freq_);
    backend_.kv_write(k, v, d_slots_, kv.layer(li));
    backend_.paged_attention(q, kv.layer(li), batch, hq, scale, attn);
    backend_.linear(attn, l.wo, proj);
    // Feed-forward block.
    backend_.add_rms_norm(x, proj, l.ffn_norm, eps, h);
    backend_.linear(h, l.w_gate, gate);
    backend_.linear(h, l.w_up, upv);
    backend_.swiglu(gate, upv, act);
    backend_.linear(act, l.w_down, proj);
  }
  if (R == 0) return;
  Tensor last = last_hidden_.slice_rows(0, R);
  Tensor last_normed = normed_.slice_rows(0, R);
  backend_.gather_rows(x, d_rows_, last);
  // Final residual add, then the final norm, on the gathered rows only.
  Tensor last_proj = last_proj_.slice_rows(0, R);
  backend_.gather_rows(proj, d_rows_, last_proj);
  backend_.add_rms_norm(last, last_proj, final_norm_, eps, last_normed);
  Tensor lg = logits_dev_.slice_rows(0, R), lg32 = logits_f32_.slice_rows(0, R);
  backend_.linear(last_normed, lm_head_, lg);
  backend_.to_f32(lg, lg32);
  backend_.download(logits, lg32.data, lg32.bytes());
}

}  // namespace herd
