#include "engine/quant/fp8_config.h"

#include <fstream>

#include "engine/common/error.h"

namespace herd {

bool Fp8QuantConfig::not_converted(const std::string& module) const {
  for (const auto& key : modules_to_not_convert)
    if (!key.empty() && module.find(key) != std::string::npos) return true;
  return false;
}

Fp8QuantConfig parse_fp8_quant_config(const nlohmann::json& config, const std::string& file) {
  Fp8QuantConfig c;
  if (!config.is_object() || !config.contains("quantization_config") ||
      config["quantization_config"].is_null())
    return c;
  const auto& q = config["quantization_config"];
  const std::string where = file + ": quantization_config";
  if (!q.is_object()) throw Error(where + " is not an object");
  if (!q.contains("quant_method") || !q["quant_method"].is_string())
    throw Error(where + " has no quant_method string");
  const std::string method = q["quant_method"].get<std::string>();
  if (method != "fbgemm_fp8")
    throw Error(where + ".quant_method \"" + method +
                "\" is not supported (herd reads \"fbgemm_fp8\": row-wise FP8 weights with " +
                "F32 weight_scale; use --quantization fp8 to quantize a BF16 checkpoint)");
  c.present = true;
  if (q.contains("activation_scale_ub") && !q["activation_scale_ub"].is_null()) {
    if (!q["activation_scale_ub"].is_number())
      throw Error(where + ".activation_scale_ub is not a number");
    c.activation_scale_ub = q["activation_scale_ub"].get<float>();
    if (!(c.activation_scale_ub > 0.0f))
      throw Error(where + ".activation_scale_ub must be positive, got " +
                  q["activation_scale_ub"].dump());
  }
  if (q.contains("modules_to_not_convert") && !q["modules_to_not_convert"].is_null()) {
    const auto& m = q["modules_to_not_convert"];
    if (!m.is_array()) throw Error(where + ".modules_to_not_convert is not a list");
    for (const auto& e : m) {
      if (!e.is_string()) throw Error(where + ".modules_to_not_convert holds a non-string");
      c.modules_to_not_convert.push_back(e.get<std::string>());
    }
  }
  return c;
}

Fp8QuantConfig load_fp8_quant_config(const std::string& dir) {
  const std::string path = dir + "/config.json";
  std::ifstream in(path);
  if (!in) return {};  // load_model_config reports a missing config.json
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON (" + e.what() + ")");
  }
  return parse_fp8_quant_config(j, path);
}

nlohmann::json fp8_quant_config_json(const Fp8QuantConfig& c) {
  return {{"quant_method", "fbgemm_fp8"},
          {"activation_scale_ub", c.activation_scale_ub},
          {"modules_to_not_convert", c.modules_to_not_convert}};
}

}  // namespace herd
