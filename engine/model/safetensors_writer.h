// Writing safetensors checkpoints tensor by tensor, so that a checkpoint far larger than memory
// (make-model's 405B shape) streams to disk: each tensor's bytes are produced by a fill callback
// a chunk at a time. Large checkpoints are split into shards with a
// model.safetensors.index.json, the layout Hugging Face uses.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/common/dtype.h"

namespace herd {

struct TensorSpec {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  // Writes elements [first, first + count) of the row-major tensor into dst (count elements
  // of dtype). Called with increasing `first`, chunk by chunk, covering the whole tensor.
  std::function<void(int64_t first, int64_t count, void* dst)> fill;

  int64_t numel() const;
  uint64_t bytes() const { return uint64_t(numel()) * dtype_size(dtype); }
};

// A spec whose bytes come from memory (`data` must hold numel() elements of `dtype`).
TensorSpec tensor_from_memory(std::string name, DType dtype, std::vector<int64_t> shape,
                              const void* data);

struct SafetensorsWriteOptions {
  // Shards hold at most this many data bytes (a single tensor larger than that gets a shard of
  // its own). The whole checkpoint fits one shard -> DIR/model.safetensors, no index.
  uint64_t max_shard_bytes = uint64_t(4) << 30;
  std::map<std::string, std::string> metadata = {{"format", "pt"}};
};

// Writes `tensors` (in the given order) into DIR. Returns the file names written (shards, then
// the index if any). Throws herd::Error naming the file on I/O failure.
std::vector<std::string> write_safetensors_dir(const std::string& dir,
                                               const std::vector<TensorSpec>& tensors,
                                               const SafetensorsWriteOptions& options = {});

// Writes one file holding all `tensors`.
void write_safetensors_file(const std::string& path, const std::vector<TensorSpec>& tensors,
                            const std::map<std::string, std::string>& metadata = {
                                {"format", "pt"}});

}  // namespace herd
