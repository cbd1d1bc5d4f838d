// /v1/files storage under `--state-dir`: DIR/files/<id>.data (the bytes) and <id>.json (the
// OpenAI file object), each written atomically (server/state_files.h); the object is written
// last, so a file exists for the API only once its bytes are complete. Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "server/openai_response.h"

namespace herd::server {

struct StoredFile {
  std::string id;  // "file-" + 32 hex digits
  std::string filename;
  std::string purpose;  // batch | batch_output
  int64_t bytes = 0;
  int64_t created_at = 0;
  ordered_json json() const;  // OpenAI's file object
};

class FileStore {
 public:
  explicit FileStore(const std::string& state_dir);

  StoredFile add(const std::string& filename, const std::string& purpose, const std::string& data);
  // Publishes a file whose bytes were written at data_path(id) by someone else (batch outputs).
  StoredFile adopt(const std::string& id, const std::string& filename, const std::string& purpose);
  std::optional<StoredFile> get(const std::string& id) const;
  std::vector<StoredFile> list() const;  // newest first
  bool remove(const std::string& id);
  std::string data_path(const std::string& id) const;
  static std::string new_id();
  // Ids are only ever "file-" + [0-9a-f]; anything else (a path, "..") names no file.
  static bool valid_id(const std::string& id);

 private:
  std::string dir_;
  mutable std::mutex mu_;
};

}  // namespace herd::server
