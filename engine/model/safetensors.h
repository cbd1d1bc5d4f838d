// Reading safetensors checkpoints without copying: each file is memory-mapped read-only and
// every tensor is a view into the mapping. The header is validated in full before any tensor is
// handed out (sane length, valid JSON, known dtype, shape matching the byte range, byte ranges
// inside the file and not overlapping), so a truncated or corrupt file fails at open with a
// herd::Error naming the file and the tensor, never later with a crash.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/common/dtype.h"

namespace herd {

// A read-only memory mapping of a whole file (unmapped on destruction).
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws herd::Error
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// One tensor of a checkpoint: a view into a MappedFile.
struct SafetensorsTensor {
  std::string name;
  std::string file;  // path of the file holding it (for error messages)
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t bytes = 0;
};

// One .safetensors file.
class SafetensorsFile {
 public:
  static std::shared_ptr<const SafetensorsFile> open(const std::string& path);

  const std::string& path() const { return map_->path(); }
  const std::map<std::string, SafetensorsTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  explicit SafetensorsFile(std::unique_ptr<MappedFile> map) : map_(std::move(map)) {}
  void parse_header();

  std::unique_ptr<MappedFile> map_;
  std::map<std::string, SafetensorsTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a checkpoint directory: DIR/model.safetensors.index.json (sharded; every
// shard it names is opened, and each tensor must sit in the shard the index says), or else
// DIR/model.safetensors. Keeps every mapping alive as long as the object (or a copy of
// `files()`) lives.
class SafetensorsCheckpoint {
 public:
  static SafetensorsCheckpoint open_dir(const std::string& dir);

  const std::map<std::string, SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(const std::string& name) const;
  const std::vector<std::shared_ptr<const SafetensorsFile>>& files() const { return files_; }

 private:
  std::vector<std::shared_ptr<const SafetensorsFile>> files_;
  std::map<std::string, SafetensorsTensor> tensors_;
};

// "BF16" / "F16" / "F32" <-> DType; parse returns false for any other name.
bool parse_safetensors_dtype(const std::string& name, DType* out);
std::string safetensors_dtype_name(DType t);

}  // namespace herd
