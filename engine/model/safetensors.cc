// Safetensors format: u64 little-endian header length N, N bytes of JSON
// {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the data section; offsets are relative to the start of the data section.
#include "engine/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/common/error.h"

namespace herd {

using nlohmann::json;

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw Error(path + ": cannot stat: " + std::strerror(e));
  }
  size_ = size_t(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw Error(path + ": cannot mmap: " + std::strerror(e));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping keeps the file referenced
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

bool parse_safetensors_dtype(const std::string& name, DType* out) {
  if (name == "BF16")
    *out = DType::kBF16;
  else if (name == "F16")
    *out = DType::kF16;
  else if (name == "F32")
    *out = DType::kF32;
  else if (name == "F8_E4M3")  // fbgemm_fp8 weights (engine/quant)
    *out = DType::kF8E4M3;
  else
    return false;
  return true;
}

std::string safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::kBF16:
      return "BF16";
    case DType::kF16:
      return "F16";
    case DType::kF32:
      return "F32";
    case DType::kI32:
      return "I32";
    case DType::kF8E4M3:
      return "F8_E4M3";
  }
  return "?";
}

std::shared_ptr<const SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile(std::make_unique<MappedFile>(path)));
  f->parse_header();
  return f;
}

namespace {

// The header of real checkpoints is a few hundred KB; anything past this is corrupt.
constexpr uint64_t kMaxHeaderBytes = uint64_t(100) << 20;

uint64_t checked_offset(const std::string& where, const json& v) {
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
    throw Error(where + ": data_offsets must be non-negative integers, got " + v.dump());
  return v.get<uint64_t>();
}

}  // namespace

void SafetensorsFile::parse_header() {
  const std::string& path = map_->path();
  const size_t size = map_->size();
  if (size < 8)
    throw Error(path + ": corrupt safetensors file: shorter than its 8-byte header length");
  uint64_t n = 0;
  std::memcpy(&n, map_->data(), 8);  // little-endian hosts only (x86-64, aarch64)
  if (n < 2 || n > kMaxHeaderBytes || n > size - 8)
    throw Error(path + ": corrupt safetensors header: header length " + std::to_string(n) +
                " does not fit a file of " + std::to_string(size) + " bytes");
  const char* hdr = reinterpret_cast<const char*>(map_->data() + 8);
  json j;
  try {
    j = json::parse(hdr, hdr + n);
  } catch (const json::parse_error& e) {
    throw Error(path + ": corrupt safetensors header: invalid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(path + ": corrupt safetensors header: not a JSON object");

  const uint8_t* data_start = map_->data() + 8 + n;
  const uint64_t data_size = size - 8 - n;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // (begin, end) per tensor, for overlap
  std::vector<std::string> range_names;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const json& e = it.value();
    if (name == "__metadata__") {
      if (!e.is_object())
        throw Error(path + ": corrupt safetensors header: __metadata__ is not an object");
      for (auto m = e.begin(); m != e.end(); ++m)
        if (m.value().is_string()) metadata_[m.key()] = m.value().get<std::string>();
      continue;
    }
    const std::string where = path + ": tensor '" + name + "'";
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") ||
        !e.contains("data_offsets"))
      throw Error(where + ": corrupt header entry (needs dtype, shape, data_offsets): " + e.dump());
    SafetensorsTensor t;
    t.name = name;
    t.file = path;
    if (!e["dtype"].is_string()) throw Error(where + ": dtype is not a string");
    const std::string dt = e["dtype"].get<std::string>();
    if (!parse_safetensors_dtype(dt, &t.dtype))
      throw Error(where + ": unsupported dtype " + dt + " (herd reads BF16, F16, F32, F8_E4M3)");
    const json& shape = e["shape"];
    if (!shape.is_array()) throw Error(where + ": shape is not a list");
    uint64_t numel = 1;
    for (const json& d : shape) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0)
        throw Error(where + ": shape has a bad dimension " + d.dump());
      const uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && numel > (uint64_t(1) << 62) / dim)
        throw Error(where + ": shape " + shape.dump() + " is too large");
      numel *= dim;
      t.shape.push_back(int64_t(dim));
    }
    const json& off = e["data_offsets"];
    if (!off.is_array() || off.size() != 2)
      throw Error(where + ": data_offsets must be [begin, end], got " + off.dump());
    const uint64_t begin = checked_offset(where, off[0]);
    const uint64_t end = checked_offset(where, off[1]);
    if (begin > end) throw Error(where + ": data_offsets " + off.dump() + " are reversed");
    if (end > data_size)
      throw Error(where + ": data_offsets " + off.dump() + " run past the end of the data (" +
                  std::to_string(data_size) + " bytes): file truncated?");
    const uint64_t expected = numel * dtype_size(t.dtype);
    if (end - begin != expected)
      throw Error(where + ": shape " + shape.dump() + " of " + dt + " needs " +
                  std::to_string(expected) + " bytes but data_offsets cover " +
                  std::to_string(end - begin));
    t.data = data_start + begin;
    t.bytes = size_t(end - begin);
    ranges.emplace_back(begin, end);
    range_names.push_back(name);
    tensors_.emplace(name, std::move(t));
  }

  std::vector<size_t> order(ranges.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
  for (size_t k = 1; k < order.size(); ++k) {
    const auto& prev = ranges[order[k - 1]];
    const auto& cur = ranges[order[k]];
    if (cur.first < prev.second && cur.first != cur.second)
      throw Error(path + ": corrupt safetensors header: tensors '" + range_names[order[k - 1]] +
                  "' and '" + range_names[order[k]] + "' overlap");
  }
}

SafetensorsCheckpoint SafetensorsCheckpoint::open_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  SafetensorsCheckpoint ck;
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  const fs::path single_path = fs::path(dir) / "model.safetensors";
  if (fs::exists(index_path)) {
    const std::string ip = index_path.string();
    std::ifstream in(ip, std::ios::binary);
    if (!in) throw Error(ip + ": cannot open file");
    std::stringstream ss;
    ss << in.rdbuf();
    json idx;
    try {
      idx = json::parse(ss.str());
    } catch (const json::parse_error& e) {
      throw Error(ip + ": invalid JSON: " + e.what());
    }
    if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object())
      throw Error(ip + ": field 'weight_map': missing or not an object");
    std::map<std::string, std::shared_ptr<const SafetensorsFile>> shards;
    for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
      if (!it.value().is_string())
        throw Error(ip + ": field 'weight_map." + it.key() + "': expected a file name");
      const std::string shard = it.value().get<std::string>();
      if (shard.find('/') != std::string::npos || shard.empty() || shard[0] == '.')
        throw Error(ip + ": field 'weight_map." + it.key() + "': bad shard name '" + shard + "'");
      auto s = shards.find(shard);
      if (s == shards.end()) {
        s = shards.emplace(shard, SafetensorsFile::open((fs::path(dir) / shard).string())).first;
        ck.files_.push_back(s->second);
      }
      const SafetensorsTensor* t = nullptr;
      auto found = s->second->tensors().find(it.key());
      if (found != s->second->tensors().end()) t = &found->second;
      if (t == nullptr)
        throw Error(s->second->path() + ": tensor '" + it.key() + "' is missing (" + ip +
                    " says it is in this shard)");
      ck.tensors_.emplace(it.key(), *t);
    }
    // A shard tensor the index does not list is an inconsistency too.
    for (const auto& f : ck.files_)
      for (const auto& [name, t] : f->tensors())
        if (!ck.tensors_.count(name))
          throw Error(f->path() + ": tensor '" + name + "' is not listed in " + ip);
  } else if (fs::exists(single_path)) {
    auto f = SafetensorsFile::open(single_path.string());
    ck.files_.push_back(f);
    ck.tensors_ = f->tensors();
  } else {
    throw Error(dir + ": no model.safetensors or model.safetensors.index.json");
  }
  return ck;
}

const SafetensorsTensor* SafetensorsCheckpoint::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

}  // namespace herd
