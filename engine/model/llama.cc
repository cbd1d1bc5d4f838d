#include "engine/model/llama.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/common/error.h"
#include "engine/model/weights.h"
#include "engine/parallel/communicator.h"

namespace herd {

// ---------------------------------------------------------------- KvCache

size_t KvCache::bytes_per_block(const ModelConfig& cfg, int block_size, DType kv_dtype,
                                const RankLayout& layout) {
  const RankLayout l = resolve_layout(cfg, layout);
  return size_t(l.layer_end - l.layer_begin) * 2 * size_t(block_size) *
         size_t(cfg.num_key_value_heads / l.tp_size * cfg.head_dim) * dtype_size(kv_dtype);
}

KvCache::KvCache(Backend& backend, const ModelConfig& cfg, int64_t num_blocks, int block_size,
                 const RankLayout& layout)
    : backend_(backend), num_blocks_(num_blocks), block_size_(block_size) {
  const RankLayout rl = resolve_layout(cfg, layout);
  const DType dt = backend.kv_dtype();
  const int64_t rows = num_blocks * block_size;
  const int64_t kv_heads = cfg.num_key_value_heads / rl.tp_size;
  const int64_t cols = kv_heads * cfg.head_dim;
  layers_.resize(size_t(rl.layer_end - rl.layer_begin));
  for (auto& l : layers_) {
    for (Tensor* t : {&l.k, &l.v}) {
      t->dtype = dt;
      t->rows = rows;
      t->cols = cols;
      t->data = backend.allocate(t->bytes());
    }
    l.block_size = block_size;
    l.num_kv_heads = int(kv_heads);
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

namespace {

bool same_part(const RankLayout& a, const RankLayout& b) {
  return a.tp_rank == b.tp_rank && a.tp_size == b.tp_size && a.pp_rank == b.pp_rank &&
         a.pp_size == b.pp_size && a.layer_begin == b.layer_begin && a.layer_end == b.layer_end;
}

// Adopts a weight the rank may not hold (an empty view stays empty).
Tensor adopt(Backend& be, const Tensor& t) { return t.data ? be.adopt_weight(t) : Tensor{}; }

}  // namespace

// Every linear weight of a layer.
std::array<const LinearWeight*, 7> LlamaModel::linears(const Layer& l) {
  return {&l.qkv[0], &l.qkv[1], &l.qkv[2], &l.wo, &l.gate_up[0], &l.gate_up[1], &l.w_down};
}

LlamaModel::LlamaModel(const ModelConfig& cfg, std::shared_ptr<const LlamaWeights> weights,
                       Backend& backend, int max_tokens, int max_seqs, const RankLayout& layout,
                       Communicator* tp)
    : cfg_(cfg),
      layout_(resolve_layout(cfg, layout)),
      tp_(tp),
      weights_(std::move(weights)),
      backend_(backend),
      max_tokens_(max_tokens),
      max_seqs_(max_seqs) {
  if (max_tokens < 1 || max_seqs < 1)
    throw Error("LlamaModel: max_tokens and max_seqs must be >= 1");
  if (layout_.tp_size > 1 &&
      (tp_ == nullptr || tp_->size() != layout_.tp_size || tp_->rank() != layout_.tp_rank))
    throw InvalidArgument("tensor-parallel-size",
                          "LlamaModel: tensor-parallel size " + std::to_string(layout_.tp_size) +
                              " needs a communicator of that size with rank " +
                              std::to_string(layout_.tp_rank));
  const RankLayout whole = resolve_layout(cfg, RankLayout{});
  if (!same_part(weights_->layout, layout_)) {
    if (!same_part(resolve_layout(cfg, weights_->layout), whole))
      throw Error("LlamaModel: the weights hold " + describe(weights_->layout) +
                  " but the model is " + describe(layout_));
    weights_ = std::make_shared<const LlamaWeights>(shard_llama_weights(*weights_, cfg, layout_));
  }
  const LlamaWeights& w = *weights_;
  embed_ = adopt(backend, w.embed_tokens);
  final_norm_ = adopt(backend, w.norm);
  // Tied and unsharded: the same view, adopted once (a GPU copy of 4 GB matters).
  head_is_embed_ = w.lm_head.data != nullptr && w.lm_head.data == w.embed_tokens.data &&
                   w.lm_head.rows == w.embed_tokens.rows;
  lm_head_ = head_is_embed_ ? embed_ : adopt(backend, w.lm_head);
  vocab_shard_ = cfg.is_reward_model() ? cfg.num_labels : vocab_shard_rows(cfg, layout_.tp_size);
  for (const auto& lw : w.layers) {
    Layer l;
    l.attn_norm = backend.adopt_weight(lw.input_layernorm);
    l.qkv = {backend.adopt_weight(lw.q_proj), backend.adopt_weight(lw.k_proj),
             backend.adopt_weight(lw.v_proj)};
    l.wo = backend.adopt_weight(lw.o_proj);
    l.ffn_norm = backend.adopt_weight(lw.post_attention_layernorm);
    auto linear_weight = [&](const Tensor& t, const Tensor& scale) {
      return LinearWeight(backend.adopt_weight(t), adopt(backend, scale), w.activation_scale_ub);
    };
    l.gate_up = {linear_weight(lw.gate_proj, lw.gate_proj_scale),
                 linear_weight(lw.up_proj, lw.up_proj_scale)};
    l.w_down = linear_weight(lw.down_proj, lw.down_proj_scale);
    for (const LinearWeight* lin : linears(l))
      if (lin->w.data) backend.prepare_linear(lin->w);
    layers_.push_back(l);
  }
  if (lm_head_.data) backend.prepare_linear(lm_head_);

  if (!layout_.last_stage()) {
    ones_host_.assign(size_t(cfg.hidden_size), 1.0f);
    ones_ = backend.adopt_weight(Tensor{ones_host_.data(), DType::kF32, 1, cfg.hidden_size});
  }

  const DType act = backend.activation_dtype();
  const int64_t tpn = layout_.tp_size;
  const int64_t d = cfg.hidden_size, hd = cfg.head_dim;
  const int64_t qd = cfg.num_attention_heads / tpn * hd, kvd = cfg.num_key_value_heads / tpn * hd;
  const int64_t ffn = cfg.intermediate_size / tpn, T = max_tokens;
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
  logits_dev_ = scratch(act, max_seqs, vocab_shard_);
  logits_f32_ = scratch(DType::kF32, max_seqs, vocab_shard_);
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
  if (embed_.data) backend_.release_weight(embed_);
  if (final_norm_.data) backend_.release_weight(final_norm_);
  if (lm_head_.data && !head_is_embed_) backend_.release_weight(lm_head_);
  if (ones_.data) backend_.release_weight(ones_);
  for (const auto& l : layers_) {
    for (const Tensor* t : {&l.attn_norm, &l.ffn_norm})
      if (t->data) backend_.release_weight(*t);
    for (const LinearWeight* lin : linears(l))
      for (const Tensor* t : {&lin->w, &lin->row_scale})
        if (t->data) backend_.release_weight(*t);
  }
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
  const int hq = int(cfg_.num_attention_heads / layout_.tp_size);
  const int hkv = int(cfg_.num_key_value_heads / layout_.tp_size);
  const int hd = int(cfg_.head_dim);
  const float scale = 1.0f / std::sqrt(float(hd));
  if (kv.num_layers() != layers_.size() || (!layers_.empty() && kv.layer(0).num_kv_heads != hkv))
    throw Error("LlamaModel::forward: the KV cache is not sized for " + describe(layout_));

  Tensor x = residual_.slice_rows(0, T), h = normed_.slice_rows(0, T);
  Tensor q = q_.slice_rows(0, T), k = k_.slice_rows(0, T), v = v_.slice_rows(0, T);
  Tensor attn = attn_out_.slice_rows(0, T), proj = proj_out_.slice_rows(0, T);
  Tensor gate = gate_.slice_rows(0, T), upv = up_.slice_rows(0, T), act = act_.slice_rows(0, T);

  // Row-parallel projections leave a partial sum on each TP rank.
  auto reduce = [&](Tensor& t) {
    if (tp_ == nullptr || layout_.tp_size == 1) return;
    backend_.synchronize();
    tp_->all_reduce_sum(t.data, size_t(t.numel()), t.dtype);
  };

  // Embedding lookup (a replicated table: no communication). For 405B it costs
  // 128256 x 16384 bf16 = 4.2 GB on every first-stage GPU. Later stages find their input
  // in residual_ (hidden_states()).
  if (layout_.first_stage()) backend_.embedding(embed_, d_ids_, x);
  for (size_t li = 0; li < layers_.size(); ++li) {
    const Layer& l = layers_[li];
    // Attention block. The residual add of the previous block is fused into this norm.
    if (li == 0)
      backend_.rms_norm(x, l.attn_norm, eps, h);
    else
      backend_.add_rms_norm(x, proj, l.attn_norm, eps, h);
    Tensor qkv_out[] = {q, k, v};
    backend_.linear_group(h, l.qkv.data(), qkv_out, 3);
    backend_.rope(q, hq, hd, d_pos_, d_inv_freq_);
    backend_.rope(k, hkv, hd, d_pos_, d_inv_freq_);
    backend_.kv_write(k, v, d_slots_, kv.layer(li));
    backend_.paged_attention(q, kv.layer(li), batch, hq, scale, attn);
    backend_.linear(attn, l.wo, proj);
    reduce(proj);
    // Feed-forward block.
    backend_.add_rms_norm(x, proj, l.ffn_norm, eps, h);
    Tensor gate_up_out[] = {gate, upv};
    backend_.linear_group(h, l.gate_up.data(), gate_up_out, 2);
    backend_.swiglu(gate, upv, act);
    backend_.linear(act, l.w_down, proj);
    reduce(proj);
  }
  if (!layout_.last_stage()) {
    // Fold the last down_proj output into the residual so that one tensor crosses the stage
    // boundary (add_rms_norm with unit weights; the normalized copy in h is discarded).
    backend_.add_rms_norm(x, proj, ones_, eps, h);
    backend_.synchronize();
    return;
  }
  if (R == 0) return;
  Tensor last = last_hidden_.slice_rows(0, R);
  Tensor last_normed = normed_.slice_rows(0, R);
  backend_.gather_rows(x, d_rows_, last);
  // Final residual add, then the final norm, on the gathered rows only.
  Tensor last_proj = last_proj_.slice_rows(0, R);
  backend_.gather_rows(proj, d_rows_, last_proj);
  backend_.add_rms_norm(last, last_proj, final_norm_, eps, last_normed);
  // This rank's vocabulary rows (all of them without TP).
  const int64_t vr = lm_head_.rows;
  Tensor lg{logits_dev_.data, logits_dev_.dtype, R, vr};
  Tensor lg32{logits_f32_.data, DType::kF32, R, vr};
  backend_.linear(last_normed, lm_head_, lg);
  backend_.to_f32(lg, lg32);
  // A reward model's score head is replicated: every TP rank already has the full rows.
  if (layout_.tp_size == 1 || cfg_.is_reward_model()) {
    backend_.download(logits, lg32.data, lg32.bytes());
    return;
  }
  // Vocab-parallel: gather every rank's [R, vocab_shard_] slice (the last one zero-padded
  // when tp does not divide the vocabulary) and drop the padding.
  const int64_t tpn = layout_.tp_size, vs = vocab_shard_, V = cfg_.vocab_size;
  gather_send_.assign(size_t(R * vs), 0.0f);
  gather_recv_.resize(size_t(tpn * R * vs));
  std::vector<float> local(size_t(R * vr));
  backend_.download(local.data(), lg32.data, lg32.bytes());
  for (int64_t r = 0; r < R; ++r)
    std::copy_n(local.data() + r * vr, vr, gather_send_.data() + r * vs);
  tp_->all_gather(gather_send_.data(), gather_recv_.data(), size_t(R * vs), DType::kF32);
  for (int64_t t = 0; t < tpn; ++t) {
    const int64_t begin = t * vs, n = std::max<int64_t>(0, std::min(vs, V - begin));
    for (int64_t r = 0; r < R; ++r)
      std::copy_n(gather_recv_.data() + (t * R + r) * vs, n, logits + r * V + begin);
  }
}

Tensor LlamaModel::hidden_states(int64_t num_tokens) {
  if (num_tokens < 0 || num_tokens > max_tokens_)
    throw Error("LlamaModel::hidden_states: " + std::to_string(num_tokens) +
                " tokens exceed max_tokens " + std::to_string(max_tokens_));
  return residual_.slice_rows(0, num_tokens);
}

}  // namespace herd
