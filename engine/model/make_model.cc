#include "engine/model/make_model.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "engine/common/error.h"
#include "engine/model/safetensors_writer.h"
#include "engine/model/weights.h"
#include "engine/tokenizer/builtin_tokenizer.h"

namespace herd {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

struct Shape {
  const char* name;
  int64_t vocab, hidden, intermediate, layers, heads, kv_heads, head_dim, max_pos;
  double rope_factor;  // llama3 rope scaling factor
  int64_t original_max_pos;
  bool tied;
  int64_t labels;  // > 0: a reward model (LlamaForSequenceClassification) with this many labels
};

// tiny: Llama-3.1-like in every respect that matters to the code paths (GQA, llama3 RoPE
// scaling with all three frequency bands present, untied head, 256 Llama-3 special tokens at
// the top of the vocabulary) but small enough to run in milliseconds. The others are the real
// Meta configurations (3.1 for 8B/70B/405B, 3.2 for 1B/3B). tiny-128k is tiny with the real
// Llama 3 vocabulary size, so that `--tokenizer` can give it Meta's tokenizer (chat, tools).
// tiny-tp is tiny with 4 KV heads (no GQA sharing) and an intermediate size divisible by 4, so
// that it splits over 1, 2 or 4 tensor-parallel ranks and 1, 2 or 4 pipeline stages.
// *-rm are reward models (LlamaForSequenceClassification, one label: a `score.weight`
// [1, hidden] head and no lm_head) of the same shapes, for `herd rs` tests and benchmarks.
constexpr Shape kShapes[] = {
    {"tiny", 512, 64, 172, 4, 4, 2, 16, 4096, 8.0, 512, false, 0},
    {"tiny-tied", 512, 64, 172, 4, 4, 2, 16, 4096, 8.0, 512, true, 0},
    {"tiny-128k", 128256, 64, 172, 4, 4, 2, 16, 4096, 8.0, 512, false, 0},
    {"tiny-tp", 512, 64, 176, 4, 4, 4, 16, 4096, 8.0, 512, false, 0},
    {"llama3.2-1b", 128256, 2048, 8192, 16, 32, 8, 64, 131072, 32.0, 8192, true, 0},
    {"llama3.2-3b", 128256, 3072, 8192, 28, 24, 8, 128, 131072, 32.0, 8192, true, 0},
    {"llama3-8b", 128256, 4096, 14336, 32, 32, 8, 128, 131072, 8.0, 8192, false, 0},
    {"llama3-70b", 128256, 8192, 28672, 80, 64, 8, 128, 131072, 8.0, 8192, false, 0},
    {"llama3-405b", 128256, 16384, 53248, 126, 128, 8, 128, 131072, 8.0, 8192, false, 0},
    {"tiny-rm", 512, 64, 172, 4, 4, 2, 16, 4096, 8.0, 512, false, 1},
    {"llama3-8b-rm", 128256, 4096, 14336, 32, 32, 8, 128, 131072, 8.0, 8192, false, 1},
    {"llama3-70b-rm", 128256, 8192, 28672, 80, 64, 8, 128, 131072, 8.0, 8192, false, 1},
};

const Shape& find_shape(const std::string& name) {
  for (const Shape& s : kShapes)
    if (name == s.name) return s;
  std::string known;
  for (const Shape& s : kShapes) known += std::string(known.empty() ? "" : ", ") + s.name;
  throw Error("unknown model shape '" + name + "' (known: " + known + ")");
}

// Llama 3 special tokens sit at the top 256 ids.
int64_t special_base(const Shape& s) { return s.vocab - 256; }
std::vector<int64_t> eos_ids(const Shape& s) {
  const int64_t b = special_base(s);
  return {b + 1, b + 8, b + 9};  // <|end_of_text|>, <|eom_id|>, <|eot_id|>
}

const char* torch_dtype_name(DType t) {
  switch (t) {
    case DType::kBF16:
      return "bfloat16";
    case DType::kF16:
      return "float16";
    case DType::kF32:
      return "float32";
    default:
      throw Error("make-model: unsupported dtype " + std::string(dtype_name(t)));
  }
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t name_hash(const std::string& s) {  // FNV-1a: stable across platforms and runs
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

void store(DType t, float v, void* dst, int64_t i) {
  switch (t) {
    case DType::kF32:
      static_cast<float*>(dst)[i] = v;
      break;
    case DType::kBF16:
      static_cast<uint16_t*>(dst)[i] = f32_to_bf16(v);
      break;
    case DType::kF16:
      static_cast<uint16_t*>(dst)[i] = f32_to_f16(v);
      break;
    default:
      break;
  }
}

// A random tensor: element i = mean + std * normal(seed, hash(name), i).
TensorSpec random_tensor(const std::string& name, std::vector<int64_t> shape, DType dtype,
                         uint64_t seed, float mean, float std, int threads) {
  TensorSpec s{name, dtype, std::move(shape), nullptr};
  const uint64_t stream = name_hash(name);
  s.fill = [=](int64_t first, int64_t count, void* dst) {
    auto work = [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        store(dtype, mean + std * make_model_normal(seed, stream, uint64_t(first + i)), dst, i);
    };
    const int64_t per = std::max<int64_t>(int64_t(1) << 16, (count + threads - 1) / threads);
    if (count <= per) return work(0, count);
    std::vector<std::thread> pool;
    for (int64_t b = per; b < count; b += per) pool.emplace_back(work, b, std::min(count, b + per));
    work(0, std::min(count, per));
    for (auto& t : pool) t.join();
  };
  return s;
}

void write_json(const fs::path& path, const ojson& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) throw Error(path.string() + ": write failed");
}

// Highest token id a tokenizer.json can produce (model vocab and added tokens).
int64_t max_token_id(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(path.string() + ": invalid JSON: " + e.what());
  }
  int64_t m = -1;
  if (j.contains("model") && j["model"].contains("vocab") && j["model"]["vocab"].is_object())
    for (const auto& [k, v] : j["model"]["vocab"].items())
      if (v.is_number_integer()) m = std::max(m, v.get<int64_t>());
  if (j.contains("added_tokens") && j["added_tokens"].is_array())
    for (const auto& t : j["added_tokens"])
      if (t.contains("id") && t["id"].is_number_integer()) m = std::max(m, t["id"].get<int64_t>());
  return m;
}

void write_tokenizer(const Shape& s, const MakeModelOptions& o, const fs::path& out) {
  if (!o.tokenizer_dir.empty()) {
    const fs::path src(o.tokenizer_dir);
    if (!fs::exists(src / "tokenizer.json"))
      throw Error((src / "tokenizer.json").string() + ": cannot open file (--tokenizer)");
    const int64_t top = max_token_id(src / "tokenizer.json");
    if (top >= s.vocab)
      throw Error((src / "tokenizer.json").string() + ": has token id " + std::to_string(top) +
                  " but shape '" + s.name + "' has vocab_size " + std::to_string(s.vocab) +
                  (s.vocab < 128256 ? " (for a Llama 3 tokenizer use --shape tiny-128k)" : ""));
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})
      if (fs::exists(src / f))
        fs::copy_file(src / f, out / f, fs::copy_options::overwrite_existing);
    return;
  }
  write_json(out / "tokenizer.json", ojson(make_byte_level_tokenizer_json(int(s.vocab))));
  ojson cfg = ojson(make_byte_level_tokenizer_config_json(int(s.vocab), /*instruct=*/true));
  cfg["model_max_length"] = s.max_pos;
  write_json(out / "tokenizer_config.json", cfg);
}

}  // namespace

std::vector<std::string> make_model_shape_names() {
  std::vector<std::string> out;
  for (const Shape& s : kShapes) out.push_back(s.name);
  return out;
}

float make_model_normal(uint64_t seed, uint64_t stream, uint64_t index) {
  const uint64_t r = splitmix64(splitmix64(seed ^ splitmix64(stream)) + index);
  // Irwin-Hall: the sum of four uniforms on [0,1) has mean 2 and variance 1/3.
  float sum = 0.0f;
  for (int k = 0; k < 4; ++k) sum += float((r >> (16 * k)) & 0xffffu) * (1.0f / 65536.0f);
  return (sum - 2.0f + 2.0f / 65536.0f) * 1.7320508f;
}

ojson make_model_config_json(const std::string& shape, DType dtype) {
  const Shape& s = find_shape(shape);
  ojson c;
  c["architectures"] = {s.labels > 0 ? "LlamaForSequenceClassification" : "LlamaForCausalLM"};
  c["attention_bias"] = false;
  c["attention_dropout"] = 0.0;
  c["bos_token_id"] = special_base(s);
  c["eos_token_id"] = eos_ids(s);
  c["head_dim"] = s.head_dim;
  c["hidden_act"] = "silu";
  c["hidden_size"] = s.hidden;
  c["initializer_range"] = 0.02;
  c["intermediate_size"] = s.intermediate;
  c["max_position_embeddings"] = s.max_pos;
  c["mlp_bias"] = false;
  c["model_type"] = "llama";
  c["num_attention_heads"] = s.heads;
  c["num_hidden_layers"] = s.layers;
  c["num_key_value_heads"] = s.kv_heads;
  c["pretraining_tp"] = 1;
  c["rms_norm_eps"] = 1e-5;
  c["rope_scaling"] = {{"factor", s.rope_factor},
                       {"high_freq_factor", 4.0},
                       {"low_freq_factor", 1.0},
                       {"original_max_position_embeddings", s.original_max_pos},
                       {"rope_type", "llama3"}};
  c["rope_theta"] = 500000.0;
  c["tie_word_embeddings"] = s.tied;
  c["torch_dtype"] = torch_dtype_name(dtype);
  c["use_cache"] = true;
  c["vocab_size"] = s.vocab;
  if (s.labels > 0) {
    ojson id2label, label2id;
    for (int64_t i = 0; i < s.labels; ++i) {
      const std::string name = std::string("LABEL_").append(std::to_string(i));
      id2label[std::to_string(i)] = name;
      label2id[name] = i;
    }
    c["id2label"] = id2label;
    c["label2id"] = label2id;
    c["pad_token_id"] = special_base(s) + 4;  // transformers needs one to pool a batch
  }
  return c;
}

ojson make_model_generation_config_json(const std::string& shape) {
  const Shape& s = find_shape(shape);
  ojson g;
  g["bos_token_id"] = special_base(s);
  g["do_sample"] = true;
  g["eos_token_id"] = eos_ids(s);
  g["temperature"] = 0.6;
  g["top_p"] = 0.9;
  return g;
}

void make_model(const MakeModelOptions& o) {
  const Shape& s = find_shape(o.shape);
  if (o.output.empty()) throw Error("make-model: no output directory");
  const fs::path out(o.output);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw Error(o.output + ": cannot create directory: " + ec.message());
  const int threads =
      o.threads > 0 ? o.threads : std::max(1, int(std::thread::hardware_concurrency()));

  write_json(out / "config.json", make_model_config_json(o.shape, o.dtype));
  write_json(out / "generation_config.json", make_model_generation_config_json(o.shape));
  if (o.write_tokenizer) write_tokenizer(s, o, out);

  // Scales: projections reading a normalized input get std 1/sqrt(in) so their outputs are
  // O(1); the two residual-branch outputs (o_proj, down_proj) are further scaled by
  // 1/sqrt(2 * layers) so the residual stream grows gently with depth (GPT-2's scheme).
  // Norm weights are 1 + small noise so that a forward ignoring them would be caught.
  const int64_t h = s.hidden, q = s.heads * s.head_dim, kv = s.kv_heads * s.head_dim,
                ff = s.intermediate;
  const float in_h = 1.0f / std::sqrt(float(h));
  const float branch = 1.0f / std::sqrt(2.0f * float(s.layers));
  const DType dt = o.dtype;
  std::vector<TensorSpec> t;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float mean, float std) {
    t.push_back(random_tensor(name, std::move(shape), dt, o.seed, mean, std, threads));
  };
  // Tied: the embedding doubles as the head; std h^-1/4 is the compromise between a token
  // signal that is not drowned by the layers' outputs and logits of std h^1/4 (2.8 for tiny,
  // 6.7 for 1B) rather than sqrt(h).
  add("model.embed_tokens.weight", {s.vocab, h}, 0.0f,
      s.tied ? 1.0f / std::sqrt(std::sqrt(float(h))) : 1.0f);
  for (int64_t l = 0; l < s.layers; ++l) {
    auto n = [l](const char* m) { return llama_layer_tensor_name(l, m); };
    add(n("input_layernorm"), {h}, 1.0f, 0.05f);
    add(n("self_attn.q_proj"), {q, h}, 0.0f, in_h);
    add(n("self_attn.k_proj"), {kv, h}, 0.0f, in_h);
    add(n("self_attn.v_proj"), {kv, h}, 0.0f, in_h);
    add(n("self_attn.o_proj"), {h, q}, 0.0f, branch / std::sqrt(float(q)));
    add(n("post_attention_layernorm"), {h}, 1.0f, 0.05f);
    add(n("mlp.gate_proj"), {ff, h}, 0.0f, in_h);
    add(n("mlp.up_proj"), {ff, h}, 0.0f, in_h);
    add(n("mlp.down_proj"), {h, ff}, 0.0f, branch / std::sqrt(float(ff)));
  }
  add("model.norm.weight", {h}, 1.0f, 0.05f);
  // std 2/sqrt(h): logits of a few units, so greedy choices are not near-ties.
  // A reward model: the score head instead (scores of a few units, as the logits above).
  if (s.labels > 0)
    add("score.weight", {s.labels, h}, 0.0f, 2.0f * in_h);
  else if (!s.tied)
    add("lm_head.weight", {s.vocab, h}, 0.0f, 2.0f * in_h);

  SafetensorsWriteOptions wo;
  wo.max_shard_bytes = o.max_shard_bytes;
  write_safetensors_dir(o.output, t, wo);
}

}  // namespace herd
