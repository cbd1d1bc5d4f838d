// make-model: writes a complete Hugging Face Llama checkpoint directory with seeded random
// weights — config.json, generation_config.json, model.safetensors (sharded past 4 GB) and
// tokenizer files — so that every path of the engine (loading, sharding, TP/PP, benchmarks at
// real sizes) can be exercised without downloading Meta's weights. The weights are a pure
// function of (seed, tensor name, element index), so the output is byte-identical for a seed
// regardless of thread count, and the scales keep activations finite through every layer.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/common/dtype.h"

namespace herd {

// Names accepted by --shape: tiny, tiny-tied, tiny-128k, tiny-tp, llama3.2-1b, llama3.2-3b, llama3-8b,
// llama3-70b, llama3-405b, and the reward models tiny-rm, llama3-8b-rm, llama3-70b-rm.
std::vector<std::string> make_model_shape_names();

struct MakeModelOptions {
  std::string shape = "tiny";
  std::string output;         // directory (created if missing)
  std::string tokenizer_dir;  // copy tokenizer files from here; empty -> built-in byte-level
  uint64_t seed = 0;
  DType dtype = DType::kBF16;
  uint64_t max_shard_bytes = uint64_t(4) << 30;
  int threads = 0;              // 0 -> hardware concurrency
  bool write_tokenizer = true;  // false: config + weights only (tests of the weights alone)
};

// The config.json / generation_config.json make-model writes for a shape (throws herd::Error
// for an unknown shape name).
nlohmann::ordered_json make_model_config_json(const std::string& shape, DType dtype);
nlohmann::ordered_json make_model_generation_config_json(const std::string& shape);

// Writes the checkpoint; throws herd::Error (naming the file) on failure.
void make_model(const MakeModelOptions& options);

// One element of make-model's random stream: approximately standard normal (sum of four
// uniforms, so bounded by +-3.47), a pure function of (seed, stream, index).
float make_model_normal(uint64_t seed, uint64_t stream, uint64_t index);

}  // namespace herd
