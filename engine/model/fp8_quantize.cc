#include "engine/model/fp8_quantize.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/common/error.h"
#include "engine/model/safetensors.h"
#include "engine/model/safetensors_writer.h"
#include "engine/quant/fp8_rowwise.h"

namespace herd {

namespace fs = std::filesystem;

namespace {

const char* const kFfnModules[] = {"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};

// A matrix quantized row by row: codes [rows, cols] and scales [rows, 1].
struct QuantizedMatrix {
  std::vector<uint8_t> codes;
  std::vector<float> scales;
};

QuantizedMatrix quantize_matrix(const void* data, DType dtype, int64_t rows, int64_t cols,
                                int64_t stride) {
  QuantizedMatrix q;
  q.codes.resize(size_t(rows * cols));
  q.scales.resize(size_t(rows));
  const size_t es = dtype_size(dtype);
  for (int64_t j = 0; j < rows; ++j)
    q.scales[size_t(j)] =
        quantize_weight_row_fp8(static_cast<const char*>(data) + size_t(j * stride) * es, dtype,
                                cols, q.codes.data() + j * cols);
  return q;
}

// Keeps the source mapping and the quantized buffers alive behind one storage pointer.
struct QuantizedStorage {
  std::shared_ptr<const void> source;
  std::vector<QuantizedMatrix> matrices;
};

}  // namespace

std::vector<int64_t> fp8_quantized_layers(const ModelConfig& c, const Fp8QuantizeOptions& o) {
  std::vector<int64_t> out;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    if (!fp8_keeps_layer(l, c.num_hidden_layers, o.keep_first, o.keep_last)) out.push_back(l);
  return out;
}

Fp8QuantConfig fp8_quant_config_for(const ModelConfig& c, const Fp8QuantizeOptions& o) {
  Fp8QuantConfig q;
  q.present = true;
  q.activation_scale_ub = o.activation_scale_ub;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (const char* m :
         {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"})
      q.modules_to_not_convert.push_back(p + m);
    if (fp8_keeps_layer(l, c.num_hidden_layers, o.keep_first, o.keep_last))
      for (const char* m : kFfnModules) q.modules_to_not_convert.push_back(p + m);
  }
  q.modules_to_not_convert.push_back("lm_head");
  return q;
}

LlamaWeights quantize_llama_weights_fp8(const LlamaWeights& whole, const ModelConfig& c,
                                        const Fp8QuantizeOptions& o) {
  if (whole.layout.tp_size != 1 || whole.layout.pp_size != 1 ||
      whole.layers.size() != size_t(c.num_hidden_layers))
    throw Error("quantize fp8: the input must be the whole model");
  auto storage = std::make_shared<QuantizedStorage>();
  storage->source = whole.storage;
  storage->matrices.reserve(3 * size_t(c.num_hidden_layers));
  LlamaWeights w = whole;
  w.activation_scale_ub = o.activation_scale_ub;
  for (int64_t l : fp8_quantized_layers(c, o)) {
    LlamaLayerWeights& lw = w.layers[size_t(l)];
    for (auto [t, s] :
         {std::pair{&lw.gate_proj, &lw.gate_proj_scale}, std::pair{&lw.up_proj, &lw.up_proj_scale},
          std::pair{&lw.down_proj, &lw.down_proj_scale}}) {
      if (t->dtype == DType::kF8E4M3 || s->data != nullptr)
        throw Error("quantize fp8: layer " + std::to_string(l) +
                    " is already FP8 (the checkpoint is quantized; load it without " +
                    "--quantization fp8)");
      auto& q = storage->matrices.emplace_back(
          quantize_matrix(t->data, t->dtype, t->rows, t->cols, t->row_stride()));
      *t = Tensor{q.codes.data(), DType::kF8E4M3, t->rows, t->cols};
      *s = Tensor{q.scales.data(), DType::kF32, t->rows, 1};
    }
  }
  w.storage = storage;
  return w;
}

LlamaWeights load_llama_weights_quantized(const std::string& dir, const ModelConfig& c,
                                          const RankLayout& layout,
                                          const std::string& quantization) {
  if (quantization.empty() || quantization == "none") return load_llama_weights(dir, c, layout);
  if (quantization != "fp8")
    throw InvalidArgument("quantization",
                          "--quantization must be fp8 or none, got '" + quantization + "'");
  if (load_fp8_quant_config(dir).present)
    throw InvalidArgument("quantization", dir +
                                              " is already an fbgemm_fp8 checkpoint: load it "
                                              "without --quantization fp8");
  const LlamaWeights q = quantize_llama_weights_fp8(load_llama_weights(dir, c), c, {});
  const RankLayout l = resolve_layout(c, layout);
  if (l.tp_size == 1 && l.pp_size == 1) return q;
  return shard_llama_weights(q, c, l);
}

void quantize_checkpoint_fp8(const std::string& input, const std::string& output,
                             const Fp8QuantizeOptions& o) {
  if (fs::exists(input) && fs::exists(output) && fs::equivalent(input, output))
    throw Error("herd quantize: --output must differ from --input");
  const ModelConfig c = load_model_config(input);
  if (load_fp8_quant_config(input).present)
    throw Error(input + "/config.json: the checkpoint is already quantized (quantization_config)");
  // Loading checks every tensor's name, shape and dtype (and that nothing is FP8 yet).
  const LlamaWeights whole = load_llama_weights(input, c);
  const LlamaWeights q = quantize_llama_weights_fp8(whole, c, o);
  const auto ck = SafetensorsCheckpoint::open_dir(input);

  std::map<std::string, std::pair<Tensor, Tensor>> quantized;  // weight name -> codes, scales
  for (int64_t l : fp8_quantized_layers(c, o)) {
    const LlamaLayerWeights& lw = q.layers[size_t(l)];
    quantized[llama_layer_tensor_name(l, "mlp.gate_proj")] = {lw.gate_proj, lw.gate_proj_scale};
    quantized[llama_layer_tensor_name(l, "mlp.up_proj")] = {lw.up_proj, lw.up_proj_scale};
    quantized[llama_layer_tensor_name(l, "mlp.down_proj")] = {lw.down_proj, lw.down_proj_scale};
  }
  // Every tensor in the input's order (name order), the quantized ones replaced in place.
  std::vector<TensorSpec> specs;
  for (const auto& [name, t] : ck.tensors()) {
    auto it = quantized.find(name);
    if (it == quantized.end()) {
      specs.push_back(tensor_from_memory(name, t.dtype, t.shape, t.data));
      continue;
    }
    const auto& [codes, scales] = it->second;
    specs.push_back(tensor_from_memory(name, DType::kF8E4M3, t.shape, codes.data));
    specs.push_back(
        tensor_from_memory(name + "_scale", DType::kF32, {scales.rows, 1}, scales.data));
  }
  fs::create_directories(output);
  for (const auto& e : fs::directory_iterator(input)) {
    if (!e.is_regular_file()) continue;
    const std::string f = e.path().filename().string();
    if (f == "config.json" || f.ends_with(".safetensors") || f == "model.safetensors.index.json")
      continue;
    fs::copy_file(e.path(), fs::path(output) / f, fs::copy_options::overwrite_existing);
  }
  nlohmann::ordered_json cfg;
  {
    std::ifstream in(input + "/config.json");
    cfg = nlohmann::ordered_json::parse(in);
  }
  cfg["quantization_config"] = fp8_quant_config_json(fp8_quant_config_for(c, o));
  {
    std::ofstream out(output + "/config.json");
    out << cfg.dump(2) << "\n";
    if (!out) throw Error(output + "/config.json: write failed");
  }
  write_safetensors_dir(output, specs);
}

}  // namespace herd
