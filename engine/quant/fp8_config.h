// The quantization_config of a Hugging Face fbgemm_fp8 checkpoint (Meta's published FP8
// Llama 3.1 checkpoints use it), as config.json carries it:
//   "quantization_config": {"quant_method": "fbgemm_fp8", "activation_scale_ub": 1200.0,
//                           "modules_to_not_convert": ["model.layers.0.mlp", ..., "lm_head"]}
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace herd {

// The paper's cap on the dynamic per-token activation scale (§6.2).
constexpr float kDefaultActivationScaleUb = 1200.0f;

struct Fp8QuantConfig {
  bool present = false;  // config.json has a quantization_config
  float activation_scale_ub = kDefaultActivationScaleUb;
  std::vector<std::string> modules_to_not_convert;

  // transformers' rule: a module stays unconverted when any listed key is a substring of its
  // name (e.g. "model.layers.0.mlp" covers model.layers.0.mlp.gate_proj).
  bool not_converted(const std::string& module) const;
};

// Reads config["quantization_config"] of `file` (config.json). Absent: present = false.
// Throws herd::Error naming the file for an unknown quant_method (herd reads only
// fbgemm_fp8) or a malformed field.
Fp8QuantConfig parse_fp8_quant_config(const nlohmann::json& config, const std::string& file);

// Reads DIR/config.json's quantization_config.
Fp8QuantConfig load_fp8_quant_config(const std::string& dir);

// The JSON object config.json gets for `c` (quant_method fbgemm_fp8).
nlohmann::json fp8_quant_config_json(const Fp8QuantConfig& c);

}  // namespace herd
