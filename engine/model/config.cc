// config.json / generation_config.json parsing. Every field is read through one of the small
// typed getters below so that a missing or wrongly typed field always produces the same kind of
// message: "<file>: field '<name>': <what is wrong>".
#include "engine/model/config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/common/error.h"

namespace herd {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& file, const std::string& field, const std::string& what) {
  throw Error(file + ": field '" + field + "': " + what);
}

json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const json::parse_error& e) {
    throw Error(path + ": invalid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(path + ": invalid JSON: top level is not an object");
  return j;
}

// Typed field access; `obj` is the JSON object, `name` the key (also used in messages, so
// nested fields pass their dotted path as `label`).
class Fields {
 public:
  Fields(const json& obj, std::string file, std::string prefix = "")
      : obj_(obj), file_(std::move(file)), prefix_(std::move(prefix)) {}

  bool has(const char* name) const { return obj_.contains(name) && !obj_[name].is_null(); }
  const json& at(const char* name) const { return obj_[name]; }
  std::string label(const char* name) const { return prefix_ + name; }
  const std::string& file() const { return file_; }

  int64_t integer(const char* name) const {
    if (!has(name)) fail(file_, label(name), "missing");
    return as_integer(name, obj_[name]);
  }
  int64_t integer(const char* name, int64_t def) const {
    return has(name) ? as_integer(name, obj_[name]) : def;
  }
  int64_t positive(const char* name) const {
    int64_t v = integer(name);
    if (v <= 0) fail(file_, label(name), "must be positive, got " + std::to_string(v));
    return v;
  }
  double number(const char* name, double def) const {
    if (!has(name)) return def;
    const json& v = obj_[name];
    if (!v.is_number()) fail(file_, label(name), "expected a number, got " + v.dump());
    return v.get<double>();
  }
  double number(const char* name) const {
    if (!has(name)) fail(file_, label(name), "missing");
    return number(name, 0.0);
  }
  bool boolean(const char* name, bool def) const {
    if (!has(name)) return def;
    const json& v = obj_[name];
    if (!v.is_boolean()) fail(file_, label(name), "expected true/false, got " + v.dump());
    return v.get<bool>();
  }
  std::string string(const char* name) const {
    if (!has(name)) fail(file_, label(name), "missing");
    const json& v = obj_[name];
    if (!v.is_string()) fail(file_, label(name), "expected a string, got " + v.dump());
    return v.get<std::string>();
  }
  // An int or a list of ints (eos_token_id); absent -> empty.
  std::vector<int64_t> int_or_list(const char* name) const {
    std::vector<int64_t> out;
    if (!has(name)) return out;
    const json& v = obj_[name];
    if (v.is_array()) {
      for (const json& e : v) out.push_back(as_integer(name, e));
    } else {
      out.push_back(as_integer(name, v));
    }
    return out;
  }

 private:
  int64_t as_integer(const char* name, const json& v) const {
    if (v.is_number_integer()) return v.get<int64_t>();
    // Some exporters write 8192.0; accept integral floats.
    if (v.is_number_float()) {
      double d = v.get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return int64_t(d);
    }
    fail(file_, label(name), "expected an integer, got " + v.dump());
  }

  const json& obj_;
  std::string file_;
  std::string prefix_;
};

void parse_rope_scaling(const Fields& f, ModelConfig& c) {
  if (!f.has("rope_scaling")) return;
  const json& rs = f.at("rope_scaling");
  if (!rs.is_object()) fail(f.file(), "rope_scaling", "expected an object, got " + rs.dump());
  Fields r(rs, f.file(), "rope_scaling.");
  // transformers accepts both "rope_type" (current) and "type" (older configs).
  const char* type_key = r.has("rope_type") ? "rope_type" : "type";
  std::string type = r.string(type_key);
  if (type == "default") return;
  if (type != "llama3")
    fail(f.file(), r.label(type_key),
         "unsupported rope type '" + type + "' (herd supports \"llama3\" and \"default\")");
  RopeScaling& s = c.rope_scaling;
  s.llama3 = true;
  s.factor = r.number("factor");
  s.low_freq_factor = r.number("low_freq_factor");
  s.high_freq_factor = r.number("high_freq_factor");
  s.original_max_position_embeddings = r.positive("original_max_position_embeddings");
  if (!(s.factor >= 1.0)) fail(f.file(), "rope_scaling.factor", "must be >= 1");
  if (!(s.low_freq_factor > 0.0)) fail(f.file(), "rope_scaling.low_freq_factor", "must be > 0");
  if (!(s.high_freq_factor > s.low_freq_factor))
    fail(f.file(), "rope_scaling.high_freq_factor", "must be greater than low_freq_factor");
}

DType parse_torch_dtype(const Fields& f) {
  std::string t = f.string("torch_dtype");
  if (t == "bfloat16") return DType::kBF16;
  if (t == "float16") return DType::kF16;
  if (t == "float32") return DType::kF32;
  fail(f.file(), "torch_dtype",
       "unsupported value '" + t + "' (expected bfloat16, float16 or float32)");
}

// A sequence-classification head: transformers writes id2label (num_labels is derived from
// it and not saved); a config may also say num_labels. Neither: transformers' default of 2.
void parse_labels(const Fields& f, ModelConfig& c) {
  std::vector<std::string> names;
  if (f.has("id2label")) {
    const json& m = f.at("id2label");
    if (!m.is_object() || m.empty())
      fail(f.file(), "id2label", "expected a non-empty object, got " + m.dump());
    names.resize(m.size());
    for (const auto& [k, v] : m.items()) {
      size_t used = 0;
      long long i = -1;
      try {
        i = std::stoll(k, &used);
      } catch (const std::exception&) {
      }
      if (used != k.size() || i < 0 || i >= (long long)m.size() || !v.is_string())
        fail(f.file(), "id2label",
             "expected labels \"0\".." + std::to_string(m.size() - 1) + " with string names");
      names[size_t(i)] = v.get<std::string>();
    }
  }
  c.num_labels = f.has("num_labels") ? f.positive("num_labels")
                 : names.empty()     ? 2
                                     : int64_t(names.size());
  if (!names.empty() && int64_t(names.size()) != c.num_labels)
    fail(f.file(), "num_labels",
         std::to_string(c.num_labels) + " does not match id2label's " +
             std::to_string(names.size()) + " labels");
  for (int64_t i = int64_t(names.size()); i < c.num_labels; ++i)
    names.push_back(std::string("LABEL_").append(std::to_string(i)));
  c.id2label = std::move(names);
}

void parse_config_json(const std::string& path, ModelConfig& c) {
  json j = read_json_file(path);
  Fields f(j, path);

  if (!f.has("architectures")) fail(path, "architectures", "missing");
  const json& arch = f.at("architectures");
  if (!arch.is_array()) fail(path, "architectures", "expected a list, got " + arch.dump());
  bool llama = false, classifier = false;
  for (const json& a : arch) {
    llama |= a.is_string() && a.get<std::string>() == "LlamaForCausalLM";
    classifier |= a.is_string() && a.get<std::string>() == "LlamaForSequenceClassification";
  }
  if (!llama && !classifier)
    fail(path, "architectures",
         "must include \"LlamaForCausalLM\" or \"LlamaForSequenceClassification\", got " +
             arch.dump());
  if (!llama) parse_labels(f, c);

  c.vocab_size = f.positive("vocab_size");
  c.hidden_size = f.positive("hidden_size");
  c.intermediate_size = f.positive("intermediate_size");
  c.num_hidden_layers = f.positive("num_hidden_layers");
  c.num_attention_heads = f.positive("num_attention_heads");
  c.num_key_value_heads =
      f.has("num_key_value_heads") ? f.positive("num_key_value_heads") : c.num_attention_heads;
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    fail(path, "num_key_value_heads",
         std::to_string(c.num_key_value_heads) + " does not divide num_attention_heads " +
             std::to_string(c.num_attention_heads));
  if (f.has("head_dim")) {
    c.head_dim = f.positive("head_dim");
  } else {
    if (c.hidden_size % c.num_attention_heads != 0)
      fail(path, "hidden_size",
           std::to_string(c.hidden_size) + " is not divisible by num_attention_heads " +
               std::to_string(c.num_attention_heads));
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.head_dim % 2 != 0)
    fail(path, "head_dim", "must be even for RoPE, got " + std::to_string(c.head_dim));
  c.max_position_embeddings =
      f.has("max_position_embeddings") ? f.positive("max_position_embeddings") : 2048;
  c.rms_norm_eps = f.number("rms_norm_eps", 1e-6);  // transformers' LlamaConfig default
  if (!(c.rms_norm_eps > 0.0)) fail(path, "rms_norm_eps", "must be > 0");
  c.rope_theta = f.number("rope_theta", 10000.0);
  if (!(c.rope_theta > 0.0)) fail(path, "rope_theta", "must be > 0");
  parse_rope_scaling(f, c);
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);
  if (f.has("torch_dtype")) c.torch_dtype = parse_torch_dtype(f);

  // Things the Llama forward does not implement must not be silently ignored.
  if (f.has("hidden_act") && f.string("hidden_act") != "silu")
    fail(path, "hidden_act", "unsupported value '" + f.string("hidden_act") + "' (expected silu)");
  if (f.boolean("attention_bias", false)) fail(path, "attention_bias", "true is not supported");
  if (f.boolean("mlp_bias", false)) fail(path, "mlp_bias", "true is not supported");
  if (f.has("partial_rotary_factor") && f.number("partial_rotary_factor", 1.0) != 1.0)
    fail(path, "partial_rotary_factor", "only 1.0 is supported");

  c.bos_token_id = f.integer("bos_token_id", -1);
  c.eos_token_ids = f.int_or_list("eos_token_id");
  for (int64_t id : c.eos_token_ids)
    if (id < 0 || id >= c.vocab_size)
      fail(path, "eos_token_id", "id " + std::to_string(id) + " is outside the vocabulary");
  if (c.bos_token_id >= c.vocab_size)
    fail(path, "bos_token_id",
         "id " + std::to_string(c.bos_token_id) + " is outside the vocabulary");
}

void parse_generation_config(const std::string& path, ModelConfig& c) {
  json j = read_json_file(path);
  Fields f(j, path);
  for (int64_t id : f.int_or_list("eos_token_id")) {
    if (id < 0 || id >= c.vocab_size)
      fail(path, "eos_token_id", "id " + std::to_string(id) + " is outside the vocabulary");
    bool seen = false;
    for (int64_t e : c.eos_token_ids) seen |= e == id;
    if (!seen) c.eos_token_ids.push_back(id);
  }
  if (c.bos_token_id < 0) c.bos_token_id = f.integer("bos_token_id", -1);
  c.default_temperature = f.number("temperature", c.default_temperature);
  if (!(c.default_temperature >= 0.0)) fail(path, "temperature", "must be >= 0");
  c.default_top_p = f.number("top_p", c.default_top_p);
  if (!(c.default_top_p > 0.0 && c.default_top_p <= 1.0)) fail(path, "top_p", "must be in (0, 1]");
}

}  // namespace

ModelConfig load_model_config(const std::string& dir) {
  namespace fs = std::filesystem;
  ModelConfig c;
  const fs::path d(dir);
  if (!fs::is_directory(d)) throw Error(dir + ": not a model directory");
  parse_config_json((d / "config.json").string(), c);
  const fs::path gen = d / "generation_config.json";
  if (fs::exists(gen)) parse_generation_config(gen.string(), c);
  return c;
}

std::vector<float> rope_inv_freq(const ModelConfig& c) {
  // Mirrors transformers' _compute_default_rope_parameters + _compute_llama3_parameters, in
  // fp32 and in the same order of operations, so that both agree to the last bit wherever
  // powf agrees with torch.pow.
  const int64_t dim = c.head_dim;
  std::vector<float> inv(size_t(dim / 2));
  const float base = float(c.rope_theta);
  for (int64_t i = 0; i < dim / 2; ++i) {
    float exponent = float(2 * i) / float(dim);
    inv[size_t(i)] = 1.0f / std::pow(base, exponent);
  }
  if (!c.rope_scaling.llama3) return inv;

  const float factor = float(c.rope_scaling.factor);
  const float low = float(c.rope_scaling.low_freq_factor);
  const float high = float(c.rope_scaling.high_freq_factor);
  const float old_ctx = float(c.rope_scaling.original_max_position_embeddings);
  const float low_freq_wavelen = old_ctx / low;
  const float high_freq_wavelen = old_ctx / high;
  const float two_pi = float(2.0 * M_PI);
  for (float& f : inv) {
    const float wavelen = two_pi / f;
    float scaled = wavelen > low_freq_wavelen ? f / factor : f;
    const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    if (medium) {
      const float smooth = (old_ctx / wavelen - low) / (high - low);
      scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
    }
    f = scaled;
  }
  return inv;
}

}  // namespace herd
