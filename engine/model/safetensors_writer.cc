#include "engine/model/safetensors_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "engine/common/error.h"
#include "engine/model/safetensors.h"

namespace herd {

int64_t TensorSpec::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

TensorSpec tensor_from_memory(std::string name, DType dtype, std::vector<int64_t> shape,
                              const void* data) {
  TensorSpec s{std::move(name), dtype, std::move(shape), nullptr};
  const size_t elem = dtype_size(dtype);
  s.fill = [data, elem](int64_t first, int64_t count, void* dst) {
    std::memcpy(dst, static_cast<const char*>(data) + size_t(first) * elem, size_t(count) * elem);
  };
  return s;
}

namespace {

// Bytes handed to fill() per call: big enough to amortize, small enough to stream.
constexpr uint64_t kChunkBytes = uint64_t(64) << 20;

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

void write_or_throw(std::FILE* f, const void* p, size_t n, const std::string& path) {
  if (n != 0 && std::fwrite(p, 1, n, f) != n)
    throw Error(path + ": write failed: " + std::strerror(errno));
}

}  // namespace

void write_safetensors_file(const std::string& path, const std::vector<TensorSpec>& tensors,
                            const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorSpec& t : tensors) {
    nlohmann::ordered_json e;
    e["dtype"] = safetensors_dtype_name(t.dtype);
    e["shape"] = t.shape;
    e["data_offsets"] = {offset, offset + t.bytes()};
    header[t.name] = e;
    offset += t.bytes();
  }
  std::string text = header.dump();
  // The format pads the header with spaces so that the data section starts 8-byte aligned.
  while (text.size() % 8 != 0) text.push_back(' ');

  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "wb"));
  if (!f) throw Error(path + ": cannot create: " + std::strerror(errno));
  const uint64_t n = text.size();
  write_or_throw(f.get(), &n, 8, path);
  write_or_throw(f.get(), text.data(), text.size(), path);
  std::vector<char> buf;
  for (const TensorSpec& t : tensors) {
    const size_t elem = dtype_size(t.dtype);
    const int64_t chunk_elems = int64_t(kChunkBytes / elem);
    const int64_t total = t.numel();
    for (int64_t first = 0; first < total; first += chunk_elems) {
      const int64_t count = std::min(chunk_elems, total - first);
      buf.resize(size_t(count) * elem);
      t.fill(first, count, buf.data());
      write_or_throw(f.get(), buf.data(), buf.size(), path);
    }
  }
  if (std::fflush(f.get()) != 0) throw Error(path + ": write failed: " + std::strerror(errno));
}

std::vector<std::string> write_safetensors_dir(const std::string& dir,
                                               const std::vector<TensorSpec>& tensors,
                                               const SafetensorsWriteOptions& options) {
  namespace fs = std::filesystem;
  // Greedy packing in order: a new shard starts when the next tensor would overflow.
  std::vector<std::vector<const TensorSpec*>> shards(1);
  uint64_t in_shard = 0, total = 0;
  for (const TensorSpec& t : tensors) {
    if (in_shard > 0 && in_shard + t.bytes() > options.max_shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(&t);
    in_shard += t.bytes();
    total += t.bytes();
  }
  std::vector<std::string> written;
  if (shards.size() == 1) {
    write_safetensors_file((fs::path(dir) / "model.safetensors").string(), tensors,
                           options.metadata);
    written.push_back("model.safetensors");
    return written;
  }
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    std::vector<TensorSpec> part;
    for (const TensorSpec* t : shards[i]) {
      part.push_back(*t);
      weight_map[t->name] = name;
    }
    write_safetensors_file((fs::path(dir) / name).string(), part, options.metadata);
    written.push_back(name);
  }
  nlohmann::ordered_json index;
  index["metadata"] = {{"total_size", total}};
  index["weight_map"] = weight_map;
  const std::string ip = (fs::path(dir) / "model.safetensors.index.json").string();
  std::ofstream out(ip);
  out << index.dump(2) << "\n";
  if (!out) throw Error(ip + ": write failed");
  written.push_back("model.safetensors.index.json");
  return written;
}

}  // namespace herd
