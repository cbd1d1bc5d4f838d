#include "engine/model/memory_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/common/error.h"
#include "engine/model/make_model.h"
#include "engine/parallel/layout.h"

namespace herd {
namespace {

constexpr double kGiB = double(int64_t(1) << 30);

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}
// The --dtype spelling (make-model's), not dtype_name()'s tensor-file one.
std::string dtype_flag(DType t) {
  switch (t) {
    case DType::kBF16:
      return "bf16";
    case DType::kF16:
      return "f16";
    case DType::kF32:
      return "f32";
    case DType::kF8E4M3:
      return "fp8";
    case DType::kI32:
      break;
  }
  return "i32";
}
// GiB with two decimals; under a GiB in MiB, so a norm's few hundred KiB is not "0.00 GiB".
std::string gib(int64_t bytes) {
  if (bytes != 0 && bytes < (int64_t(1) << 30) && bytes > -(int64_t(1) << 30))
    return fixed(double(bytes) / double(1 << 20), 1) + " MiB";
  return fixed(double(bytes) / kGiB, 2) + " GiB";
}
std::string ranks(int first, int last) {
  return first == last ? "rank " + std::to_string(first)
                       : "ranks " + std::to_string(first) + "-" + std::to_string(last);
}
// Decimal gigabytes too where the paper's figures are quoted ("810 GB of weights").
std::string gib_gb(int64_t bytes) {
  return gib(bytes) + " (" + fixed(double(bytes) / 1e9, 1) + " GB)";
}

// Weight bytes of one decoder layer on one TP rank.
struct LayerBytes {
  int64_t attention, ffn, norms;
};
LayerBytes layer_bytes(const PlanShape& s, int tp, DType wdt, bool fp8_ffn) {
  const int64_t w = plan_dtype_bytes(wdt);
  const int64_t q = s.num_heads * s.head_dim, kv = s.num_kv_heads * s.head_dim;
  // q/k/v are column-parallel (output features split), o is row-parallel (input features
  // split): each rank holds 1/tp of every matrix. Heads and KV heads divide tp (checked).
  const int64_t attention = (s.hidden_size * q + 2 * s.hidden_size * kv + q * s.hidden_size) / tp;
  // gate/up column-parallel, down row-parallel; intermediate need not divide tp, the last
  // rank's shard being the larger one: plan for that rank.
  const int64_t ffn_cols = ceil_div(s.intermediate_size, tp);
  int64_t ffn;
  if (fp8_ffn) {
    // 1 byte per weight + one FP32 scale per output row: gate/up have ffn_cols rows on this
    // rank, down keeps all `hidden` rows (its input features are what is split).
    ffn = 3 * s.hidden_size * ffn_cols + 4 * (2 * ffn_cols + s.hidden_size);
  } else {
    ffn = 3 * s.hidden_size * ffn_cols * w;
  }
  return {attention * w, ffn, 2 * s.hidden_size * w};
}

void check_options(const PlanShape& s, const PlanOptions& o) {
  // Upper bounds are herd serve's own (cli/cmd_serve.cc), and keep every product below in
  // int64 range.
  if (!(o.gpu_memory_gib > 0 && o.gpu_memory_gib <= 1e6))
    throw InvalidArgument("gpu-memory-gb", "--gpu-memory-gb must be > 0 (and at most 1e6 GiB)");
  if (!(o.gpu_memory_utilization > 0 && o.gpu_memory_utilization <= 1))
    throw InvalidArgument(
        "gpu-memory-utilization",
        "--gpu-memory-utilization must be in (0, 1], got " + fixed(o.gpu_memory_utilization, 3));
  if (o.block_size < 1 || o.block_size > 1024)
    throw InvalidArgument("block-size", "--block-size must be in [1, 1024]");
  if (o.max_num_seqs < 1 || o.max_num_seqs > (1 << 20))
    throw InvalidArgument("max-num-seqs", "--max-num-seqs must be in [1, 1048576]");
  if (o.max_num_batched_tokens < 1 || o.max_num_batched_tokens > (1 << 24))
    throw InvalidArgument("max-num-batched-tokens",
                          "--max-num-batched-tokens must be in [1, 16777216]");
  if (o.max_model_len < 0 || o.max_model_len > (1 << 24))
    throw InvalidArgument("max-model-len", "--max-model-len must be in [0, 16777216]");
  if (o.micro_batches < 0 || o.micro_batches > 4096)
    throw InvalidArgument("micro-batches",
                          "--micro-batches must be in [0, 4096] (0 = one per stage)");
  for (DType t : {o.weight_dtype, o.kv_dtype})
    if (t == DType::kI32) throw InvalidArgument("dtype", "weights and KV are bf16, f16 or f32");
  if (o.runtime_reserve_bytes < 0) throw InvalidArgument("reserve-gb", "--reserve-gb must be >= 0");
  if (s.num_layers < 1 || s.hidden_size < 1 || s.num_heads < 1 || s.num_kv_heads < 1 ||
      s.head_dim < 1 || s.vocab_size < 1 || s.intermediate_size < 1)
    throw InvalidArgument("model", "model shape '" + s.name + "' has a non-positive dimension");
  // Far beyond any Llama (405B: 126 layers, intermediate 53248), and small enough that no
  // byte count overflows int64.
  constexpr int64_t kMaxDim = int64_t(1) << 20;
  if (s.num_layers > 4096 || s.hidden_size > kMaxDim || s.intermediate_size > kMaxDim ||
      s.num_heads * s.head_dim > kMaxDim || s.vocab_size > (int64_t(1) << 24))
    throw InvalidArgument("model", "model shape '" + s.name + "' is too large to plan");
}

}  // namespace

PlanShape plan_shape_from_config(const ModelConfig& c, const std::string& name) {
  PlanShape s;
  s.name = name;
  s.vocab_size = c.vocab_size;
  s.hidden_size = c.hidden_size;
  s.intermediate_size = c.intermediate_size;
  s.num_layers = c.num_hidden_layers;
  s.num_heads = c.num_attention_heads;
  s.num_kv_heads = c.num_key_value_heads;
  s.head_dim = c.head_dim;
  s.max_position_embeddings = c.max_position_embeddings;
  s.tied_embeddings = c.tie_word_embeddings;
  s.num_labels = c.is_reward_model() ? c.num_labels : 0;
  return s;
}

PlanShape plan_shape_named(const std::string& name) {
  const std::vector<std::string> names = make_model_shape_names();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    throw InvalidArgument("shape", "unknown --shape '" + name + "' (known: " + list + ")");
  }
  // The same config.json make-model writes, so `plan --shape X` and `plan --model DIR` of a
  // `make-model --shape X` checkpoint agree.
  const nlohmann::ordered_json j = make_model_config_json(name, DType::kBF16);
  PlanShape s;
  s.name = name;
  s.vocab_size = j.at("vocab_size").get<int64_t>();
  s.hidden_size = j.at("hidden_size").get<int64_t>();
  s.intermediate_size = j.at("intermediate_size").get<int64_t>();
  s.num_layers = j.at("num_hidden_layers").get<int64_t>();
  s.num_heads = j.at("num_attention_heads").get<int64_t>();
  s.num_kv_heads = j.at("num_key_value_heads").get<int64_t>();
  s.head_dim = j.at("head_dim").get<int64_t>();
  s.max_position_embeddings = j.at("max_position_embeddings").get<int64_t>();
  s.tied_embeddings = j.at("tie_word_embeddings").get<bool>();
  s.num_labels = j.contains("id2label") ? int64_t(j.at("id2label").size()) : 0;
  return s;
}

int64_t plan_dtype_bytes(DType dtype) { return int64_t(dtype_size(dtype)); }

int64_t kv_bytes_per_block(const PlanShape& s, int stage_layers, int tp, int64_t block_size,
                           DType kv_dtype) {
  return int64_t(stage_layers) * 2 * block_size * (s.num_kv_heads / tp) * s.head_dim *
         plan_dtype_bytes(kv_dtype);
}

int64_t activation_workspace_bytes(const PlanShape& s, const PlanOptions& o, bool last_stage) {
  const int64_t tp = o.tensor_parallel_size, a = plan_dtype_bytes(o.weight_dtype);
  const int64_t T = o.max_num_batched_tokens, h = s.hidden_size;
  const int64_t q = s.num_heads * s.head_dim, kv = s.num_kv_heads * s.head_dim;
  const int64_t i = ceil_div(s.intermediate_size, tp);
  int64_t bytes = T * a * (2 * h + (q + 2 * kv) / tp + q / tp + 3 * i);
  // fp32 logits: the rank's shard and the gathered row (a reward model: its few scores).
  if (last_stage)
    bytes += o.max_num_seqs * 4 *
             (s.num_labels > 0 ? 2 * s.num_labels : ceil_div(s.vocab_size, tp) + s.vocab_size);
  if (o.pipeline_parallel_size > 1) {
    const int64_t m = o.micro_batches > 0 ? o.micro_batches : o.pipeline_parallel_size;
    bytes += 2 * m * T * h * a;
  }
  return bytes;
}

MemoryPlan plan_memory(const PlanShape& shape, const PlanOptions& options) {
  check_options(shape, options);
  const int tp = options.tensor_parallel_size, pp = options.pipeline_parallel_size;
  const ParallelConfig pc{tp, pp, options.micro_batches};
  // The engine's own checks and split (heads/KV heads divisible by tp, layers >= pp), so the
  // plan describes exactly the layout `herd serve` would build.
  std::vector<RankLayout> layouts;
  for (int s = 0; s < std::max(pp, 1); ++s)
    layouts.push_back(make_rank_layout(pc, int(shape.num_layers), int(shape.num_heads),
                                       int(shape.num_kv_heads), tp * pp, s * tp));

  MemoryPlan p;
  p.shape = shape;
  p.options = options;
  if (p.options.max_model_len == 0) p.options.max_model_len = shape.max_position_embeddings;
  if (p.options.max_model_len < 1)
    throw InvalidArgument("max-model-len",
                          "the model gives no max_position_embeddings; pass --max-model-len");
  const PlanOptions& o = p.options;
  const int64_t w = plan_dtype_bytes(o.weight_dtype);
  const int64_t budget = int64_t(o.gpu_memory_gib * o.gpu_memory_utilization * kGiB);
  const int64_t last_layer = shape.num_layers - 1;
  auto fp8_layer = [&](int64_t l) { return o.fp8_ffn && l != 0 && l != last_layer; };

  // The whole model once, unsharded: the figure the paper compares with a node's memory.
  const LayerBytes full = layer_bytes(shape, 1, o.weight_dtype, false);
  const LayerBytes full8 = layer_bytes(shape, 1, o.weight_dtype, true);
  for (int64_t l = 0; l < shape.num_layers; ++l)
    p.model_weight_bytes += full.attention + full.norms + (fp8_layer(l) ? full8.ffn : full.ffn);
  p.model_weight_bytes += shape.vocab_size * shape.hidden_size * w;  // embedding
  if (shape.num_labels > 0)
    p.model_weight_bytes += shape.num_labels * shape.hidden_size * w;  // score head
  else if (!shape.tied_embeddings)
    p.model_weight_bytes += shape.vocab_size * shape.hidden_size * w;  // lm_head
  p.model_weight_bytes += shape.hidden_size * w;                       // final norm

  const LayerBytes lb = layer_bytes(shape, tp, o.weight_dtype, false);
  const LayerBytes lb8 = layer_bytes(shape, tp, o.weight_dtype, true);
  p.blocks_per_full_sequence = ceil_div(o.max_model_len, o.block_size);
  p.num_blocks = -1;
  for (const RankLayout& l : layouts) {
    StagePlan st;
    st.stage = l.pp_rank;
    st.first_rank = l.pp_rank * tp;
    st.last_rank = st.first_rank + tp - 1;
    st.layer_begin = l.layer_begin;
    st.layer_end = l.layer_end;
    for (int64_t layer = l.layer_begin; layer < l.layer_end; ++layer) {
      const bool f8 = fp8_layer(layer);
      st.fp8_layers += f8 ? 1 : 0;
      st.weights.attention += lb.attention;
      st.weights.ffn += f8 ? lb8.ffn : lb.ffn;
      st.weights.norms += lb.norms;
    }
    if (l.first_stage()) st.weights.embedding = shape.vocab_size * shape.hidden_size * w;
    if (l.last_stage()) {
      st.weights.norms += shape.hidden_size * w;
      // Tied and on the same rank as the embedding: the head is the embedding matrix.
      if (shape.num_labels > 0)
        st.weights.lm_head = shape.num_labels * shape.hidden_size * w;  // replicated, tiny
      else if (!(shape.tied_embeddings && l.first_stage()))
        st.weights.lm_head = ceil_div(shape.vocab_size, tp) * shape.hidden_size * w;
    }
    st.activation_bytes = activation_workspace_bytes(shape, o, l.last_stage());
    st.reserve_bytes = o.runtime_reserve_bytes;
    st.budget_bytes = budget;
    st.kv_bytes = budget - st.weights.total() - st.activation_bytes - st.reserve_bytes;
    st.kv_bytes_per_block =
        kv_bytes_per_block(shape, l.layer_end - l.layer_begin, tp, o.block_size, o.kv_dtype);
    st.num_blocks = st.kv_bytes > 0 ? st.kv_bytes / st.kv_bytes_per_block : 0;
    p.num_blocks = p.num_blocks < 0 ? st.num_blocks : std::min(p.num_blocks, st.num_blocks);
    p.stages.push_back(st);
  }
  p.kv_tokens = p.num_blocks * o.block_size;

  const std::string budget_s = gib(budget) + " (" + fixed(o.gpu_memory_gib, 2) + " GiB x " +
                               fixed(o.gpu_memory_utilization, 2) + ")";
  const int64_t gpus_total = int64_t(tp) * pp;
  for (const StagePlan& st : p.stages) {
    const std::string who =
        "stage " + std::to_string(st.stage) + " (" + ranks(st.first_rank, st.last_rank) + ")";
    if (st.weights.total() > budget) {
      p.verdict = "does not fit: " + who + " holds " + gib(st.weights.total()) +
                  " of weights per GPU, over the budget of " + budget_s + "; the whole model is " +
                  gib_gb(p.model_weight_bytes) + " against " + std::to_string(gpus_total) +
                  (gpus_total == 1 ? " GPU" : " GPUs") + " x " + fixed(o.gpu_memory_gib, 0) +
                  " GiB = " + fixed(double(gpus_total) * o.gpu_memory_gib, 0) + " GiB" +
                  (pp == 1 ? "; add pipeline stages (--pp 2 puts half the layers on a second node)"
                           : "; add GPUs (--tp / --pp)");
      return p;
    }
  }
  for (const StagePlan& st : p.stages) {
    if (st.kv_bytes <= 0 || st.num_blocks == 0) {
      p.verdict = "does not fit: stage " + std::to_string(st.stage) +
                  " has no room for one KV block after weights " + gib(st.weights.total()) +
                  " + activations " + gib(st.activation_bytes) + " + reserve " +
                  gib(st.reserve_bytes) + " of a budget of " + budget_s +
                  "; lower --max-num-batched-tokens / --max-num-seqs or add GPUs";
      return p;
    }
  }
  if (p.num_blocks < p.blocks_per_full_sequence) {
    p.verdict = "does not fit: the KV cache holds " + std::to_string(p.kv_tokens) +
                " tokens, less than one sequence of --max-model-len " +
                std::to_string(o.max_model_len) + "; lower --max-model-len or add GPUs";
    return p;
  }
  p.fits = true;
  const int64_t full_seqs = p.num_blocks / p.blocks_per_full_sequence;
  p.verdict = "fits: KV cache for " + std::to_string(p.kv_tokens) + " tokens (" +
              std::to_string(p.num_blocks) + " blocks of " + std::to_string(o.block_size) + "), " +
              std::to_string(full_seqs) + " sequence" + (full_seqs == 1 ? "" : "s") +
              " of --max-model-len " + std::to_string(o.max_model_len) + " at once";
  if (full_seqs < o.max_num_seqs)
    p.verdict += " (fewer than --max-num-seqs " + std::to_string(o.max_num_seqs) +
                 ": the scheduler preempts when all run at full length)";
  return p;
}

std::string format_plan(const MemoryPlan& p) {
  const PlanShape& s = p.shape;
  const PlanOptions& o = p.options;
  const int tp = o.tensor_parallel_size, pp = o.pipeline_parallel_size;
  std::string out;
  auto line = [&](const std::string& l) { out += l + "\n"; };
  line("model: " + s.name + " (" + std::to_string(s.num_layers) + " layers, hidden " +
       std::to_string(s.hidden_size) + ", " + std::to_string(s.num_heads) + " heads / " +
       std::to_string(s.num_kv_heads) + " KV heads x " + std::to_string(s.head_dim) +
       ", intermediate " + std::to_string(s.intermediate_size) + ", vocab " +
       std::to_string(s.vocab_size) + (s.tied_embeddings ? ", tied embeddings" : "") + ")");
  line("weights: " + dtype_flag(o.weight_dtype) +
       (o.fp8_ffn ? " with FP8 gate/up/down (+ FP32 row scales) except the first and last layer"
                  : "") +
       "; whole model " + gib_gb(p.model_weight_bytes));
  line("parallel: tp " + std::to_string(tp) + " x pp " + std::to_string(pp) + " = " +
       std::to_string(tp * pp) + (tp * pp == 1 ? " GPU" : " GPUs") + " (mpirun -np " +
       std::to_string(tp * pp) + "); budget per GPU " +
       gib(p.stages.empty() ? 0 : p.stages[0].budget_bytes) + " = " + fixed(o.gpu_memory_gib, 2) +
       " GiB x " + fixed(o.gpu_memory_utilization, 2));
  line("KV: " + dtype_flag(o.kv_dtype) + ", block " + std::to_string(o.block_size) +
       " tokens; max-model-len " + std::to_string(o.max_model_len) + ", max-num-seqs " +
       std::to_string(o.max_num_seqs) + ", max-num-batched-tokens " +
       std::to_string(o.max_num_batched_tokens));
  line(
      "activations = T*a*(2h + (q+2kv)/tp + q/tp + 3i/tp) [+ last stage: S*V*4*(1/tp+1)]"
      " [+ pp>1: 2*M*T*h*a], T=max-num-batched-tokens, S=max-num-seqs, M=micro-batches");
  for (const StagePlan& st : p.stages) {
    const int layers = st.layer_end - st.layer_begin;
    std::string where;
    if (st.stage == 0) where += ", embedding";
    if (st.stage == pp - 1) where += ", final norm + LM head";
    line("");
    line("stage " + std::to_string(st.stage) + ": " + ranks(st.first_rank, st.last_rank) +
         ", layers " + std::to_string(st.layer_begin) + "-" + std::to_string(st.layer_end - 1) +
         " (" + std::to_string(layers) + where + "), per GPU:");
    const StageWeights& w = st.weights;
    line("  weights       " + gib(w.total()) + "  (attention " + gib(w.attention) + ", ffn " +
         gib(w.ffn) + (o.fp8_ffn ? " [" + std::to_string(st.fp8_layers) + " layers FP8]" : "") +
         ", norms " + gib(w.norms) + ", embedding " + gib(w.embedding) + ", lm_head " +
         gib(w.lm_head) + ")");
    line("  activations   " + gib(st.activation_bytes));
    line("  reserve       " + gib(st.reserve_bytes) + "  (CUDA context, cuBLASLt, NCCL)");
    line("  KV cache      " + gib(std::max<int64_t>(st.kv_bytes, 0)) +
         (st.kv_bytes < 0 ? "  (short by " + gib(-st.kv_bytes) + ")" : ""));
    line("  KV per block  " + std::to_string(st.kv_bytes_per_block) +
         " bytes = " + std::to_string(layers) + " layers x 2 x " + std::to_string(o.block_size) +
         " tokens x " + std::to_string(s.num_kv_heads / tp) + " KV heads x " +
         std::to_string(s.head_dim) + " x " + std::to_string(plan_dtype_bytes(o.kv_dtype)) + " B");
    line("  KV blocks     " + std::to_string(st.num_blocks) + " = " +
         std::to_string(st.num_blocks * o.block_size) + " tokens");
  }
  line("");
  line("verdict: " + p.verdict);
  return out;
}

nlohmann::ordered_json plan_to_json(const MemoryPlan& p) {
  const PlanShape& s = p.shape;
  const PlanOptions& o = p.options;
  nlohmann::ordered_json j;
  j["model"] = {{"name", s.name},
                {"num_layers", s.num_layers},
                {"hidden_size", s.hidden_size},
                {"num_heads", s.num_heads},
                {"num_kv_heads", s.num_kv_heads},
                {"head_dim", s.head_dim},
                {"intermediate_size", s.intermediate_size},
                {"vocab_size", s.vocab_size},
                {"tied_embeddings", s.tied_embeddings}};
  j["options"] = {{"tensor_parallel_size", o.tensor_parallel_size},
                  {"pipeline_parallel_size", o.pipeline_parallel_size},
                  {"world_size", o.tensor_parallel_size * o.pipeline_parallel_size},
                  {"dtype", dtype_flag(o.weight_dtype)},
                  {"kv_dtype", dtype_flag(o.kv_dtype)},
                  {"fp8_ffn", o.fp8_ffn},
                  {"gpu_memory_gib", o.gpu_memory_gib},
                  {"gpu_memory_utilization", o.gpu_memory_utilization},
                  {"max_model_len", o.max_model_len},
                  {"max_num_seqs", o.max_num_seqs},
                  {"max_num_batched_tokens", o.max_num_batched_tokens},
                  {"block_size", o.block_size},
                  {"runtime_reserve_bytes", o.runtime_reserve_bytes}};
  j["model_weight_bytes"] = p.model_weight_bytes;
  nlohmann::ordered_json stages = nlohmann::ordered_json::array();
  for (const StagePlan& st : p.stages) {
    stages.push_back({{"stage", st.stage},
                      {"first_rank", st.first_rank},
                      {"last_rank", st.last_rank},
                      {"layer_begin", st.layer_begin},
                      {"layer_end", st.layer_end},
                      {"fp8_layers", st.fp8_layers},
                      {"weight_bytes", st.weights.total()},
                      {"weights",
                       {{"attention", st.weights.attention},
                        {"ffn", st.weights.ffn},
                        {"norms", st.weights.norms},
                        {"embedding", st.weights.embedding},
                        {"lm_head", st.weights.lm_head}}},
                      {"activation_bytes", st.activation_bytes},
                      {"reserve_bytes", st.reserve_bytes},
                      {"budget_bytes", st.budget_bytes},
                      {"kv_bytes", st.kv_bytes},
                      {"kv_bytes_per_block", st.kv_bytes_per_block},
                      {"num_blocks", st.num_blocks},
                      {"kv_tokens", st.num_blocks * o.block_size}});
  }
  j["stages"] = stages;
  j["num_blocks"] = p.num_blocks;
  j["kv_tokens"] = p.kv_tokens;
  j["blocks_per_full_sequence"] = p.blocks_per_full_sequence;
  j["fits"] = p.fits;
  j["verdict"] = p.verdict;
  return j;
}

}  // namespace herd
