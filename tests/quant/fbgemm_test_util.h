// Test helpers: a seeded tiny BF16 checkpoint, a hand-written copy of it in exactly Meta's
// fbgemm_fp8 layout (written here, independently of herd quantize), and the engine's logits.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engine/model/llama.h"
#include "engine/model/make_model.h"
#include "engine/model/safetensors.h"
#include "engine/model/safetensors_writer.h"
#include "engine/model/weights.h"
#include "tests/model/checkpoint_test_util.h"

namespace herd::testing {

// make-model's tiny shape (4 layers, hidden 64, intermediate 172) in BF16, once per process.
inline const std::string& tiny_bf16_dir() {
  static ScratchDir dir;
  static bool made = false;
  if (!made) {
    MakeModelOptions o;
    o.shape = "tiny";
    o.output = dir.path();
    o.seed = 11;
    o.dtype = DType::kBF16;
    o.threads = 2;
    o.write_tokenizer = false;
    make_model(o);
    made = true;
  }
  return dir.path();
}

struct FbgemmOptions {
  std::set<int> layers = {1, 2};  // layers whose mlp is FP8 (the paper keeps first and last)
  std::string quant_method = "fbgemm_fp8";
  float activation_scale_ub = 1200.0f;
  // Hooks for the error tests: change a scale's shape, drop a tensor, skip the config.
  std::function<std::vector<int64_t>(const std::string&, std::vector<int64_t>)> scale_shape;
  std::set<std::string> drop;
  bool write_quantization_config = true;
};

// Copies `src` into `dst`, the mlp projections of opts.layers as F8_E4M3 `weight` [out, in]
// plus F32 `weight_scale` [out, 1] (row scale = max|row| / 448, RNE codes, as fbgemm's
// quantize_fp8_per_row), every other tensor unchanged, and config.json with Meta's
// quantization_config.
inline void write_fbgemm_checkpoint(const std::string& src, const std::string& dst,
                                    const FbgemmOptions& opts = {}) {
  std::filesystem::create_directories(dst);
  const auto ck = SafetensorsCheckpoint::open_dir(src);
  auto cfg = read_json(src + "/config.json");
  const int layers = cfg["num_hidden_layers"].get<int>();
  std::vector<std::vector<uint8_t>> codes;
  std::vector<std::vector<float>> scales;
  codes.reserve(64);
  scales.reserve(64);
  std::vector<TensorSpec> specs;
  nlohmann::ordered_json not_convert = nlohmann::ordered_json::array();
  for (const auto& [name, t] : ck.tensors()) {
    if (opts.drop.count(name)) continue;
    bool quantize = false;
    for (int l : opts.layers)
      if (name.starts_with("model.layers." + std::to_string(l) + ".mlp.")) quantize = true;
    if (!quantize) {
      specs.push_back(tensor_from_memory(name, t.dtype, t.shape, t.data));
      continue;
    }
    const int64_t rows = t.shape[0], cols = t.shape[1];
    auto& c = codes.emplace_back(size_t(rows * cols));
    auto& s = scales.emplace_back(size_t(rows));
    const uint16_t* w = static_cast<const uint16_t*>(t.data);
    for (int64_t j = 0; j < rows; ++j) {
      float amax = 0.0f;
      for (int64_t i = 0; i < cols; ++i)
        amax = std::max(amax, std::fabs(bf16_to_f32(w[j * cols + i])));
      s[size_t(j)] = amax / 448.0f;
      for (int64_t i = 0; i < cols; ++i)
        c[size_t(j * cols + i)] = f32_to_f8e4m3(bf16_to_f32(w[j * cols + i]) / s[size_t(j)]);
    }
    specs.push_back(tensor_from_memory(name, DType::kF8E4M3, t.shape, c.data()));
    const std::string sname = name + "_scale";
    std::vector<int64_t> sshape = {rows, 1};
    if (opts.scale_shape) sshape = opts.scale_shape(sname, sshape);
    if (!opts.drop.count(sname))
      specs.push_back(tensor_from_memory(sname, DType::kF32, sshape, s.data()));
  }
  // Meta lists every module it leaves in BF16 (attention, the kept layers' mlp, lm_head).
  for (int l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (const char* m :
         {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"})
      not_convert.push_back(p + m);
    if (!opts.layers.count(l))
      for (const char* m : {"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"})
        not_convert.push_back(p + m);
  }
  not_convert.push_back("lm_head");
  if (opts.write_quantization_config)
    cfg["quantization_config"] = {{"activation_scale_ub", opts.activation_scale_ub},
                                  {"modules_to_not_convert", not_convert},
                                  {"quant_method", opts.quant_method}};
  write_json(dst + "/config.json", cfg);
  if (std::filesystem::exists(src + "/generation_config.json"))
    std::filesystem::copy_file(src + "/generation_config.json", dst + "/generation_config.json",
                               std::filesystem::copy_options::overwrite_existing);
  write_safetensors_dir(dst, specs);
}

// The engine's fp32 logits of every position of `ids`, one prefill step on the CPU backend.
inline std::vector<std::vector<float>> engine_logits(std::shared_ptr<const LlamaWeights> weights,
                                                     const ModelConfig& cfg,
                                                     const std::vector<int32_t>& ids) {
  auto backend = make_cpu_backend(2);
  const int bs = 16;
  const int blocks = int(ids.size() + bs - 1) / bs;
  KvCache kv(*backend, cfg, blocks, bs);
  LlamaModel model(cfg, std::move(weights), *backend, int(ids.size()), int(ids.size()));
  StepInput in;
  for (size_t p = 0; p < ids.size(); ++p) {
    in.token_ids.push_back(ids[p]);
    in.positions.push_back(int32_t(p));
    in.slot_mapping.push_back(int32_t(p));
    in.logits_rows.push_back(int32_t(p));
  }
  in.query_start = {0, int32_t(ids.size())};
  in.seq_lens = {int32_t(ids.size())};
  in.max_blocks_per_seq = blocks;
  for (int b = 0; b < blocks; ++b) in.block_tables.push_back(b);
  std::vector<float> logits(ids.size() * size_t(cfg.vocab_size));
  model.forward(in, kv, logits.data());
  std::vector<std::vector<float>> rows;
  for (size_t r = 0; r < ids.size(); ++r)
    rows.emplace_back(logits.begin() + long(r * size_t(cfg.vocab_size)),
                      logits.begin() + long((r + 1) * size_t(cfg.vocab_size)));
  return rows;
}

inline std::vector<std::vector<float>> engine_logits(const std::string& dir,
                                                     const std::vector<int32_t>& ids) {
  const ModelConfig cfg = load_model_config(dir);
  return engine_logits(std::make_shared<const LlamaWeights>(load_llama_weights(dir, cfg)), cfg,
                       ids);
}

inline std::vector<int32_t> prompt_ids(int n, int vocab) {
  std::vector<int32_t> ids;
  for (int i = 0; i < n; ++i) ids.push_back(int32_t((i * 37 + 11) % (vocab - 256)));
  return ids;
}

inline double max_abs_diff(const std::vector<std::vector<float>>& a,
                           const std::vector<std::vector<float>>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t t = 0; t < a.size() && t < b.size(); ++t)
    for (size_t v = 0; v < a[t].size(); ++v) {
      const double d = std::fabs(double(a[t][v]) - b[t][v]);
      if (!(d <= m)) m = d;
    }
  return m;
}

}  // namespace herd::testing
