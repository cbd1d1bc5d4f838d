#include "server/file_store.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "server/engine_client.h"
#include "server/http_context.h"
#include "server/state_files.h"

namespace herd::server {

ordered_json StoredFile::json() const {
  ordered_json j;
  j["id"] = id;
  j["object"] = "file";
  j["bytes"] = bytes;
  j["created_at"] = created_at;
  j["expires_at"] = nullptr;
  j["filename"] = filename;
  j["purpose"] = purpose;
  j["status"] = "processed";
  j["status_details"] = nullptr;
  return j;
}

namespace {
std::optional<StoredFile> from_json(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  StoredFile f;
  f.id = j.value("id", "");
  f.filename = j.value("filename", "");
  f.purpose = j.value("purpose", "");
  f.bytes = j.value("bytes", int64_t(0));
  f.created_at = j.value("created_at", int64_t(0));
  return f;
}
}  // namespace

FileStore::FileStore(const std::string& state_dir) : dir_(state_dir + "/files") { make_dirs(dir_); }

std::string FileStore::new_id() { return new_request_id("file-"); }

bool FileStore::valid_id(const std::string& id) {
  if (id.size() <= 5 || id.size() > 64 || id.rfind("file-", 0) != 0) return false;
  return std::all_of(id.begin() + 5, id.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string FileStore::data_path(const std::string& id) const { return dir_ + "/" + id + ".data"; }

StoredFile FileStore::add(const std::string& filename, const std::string& purpose,
                          const std::string& data) {
  StoredFile f;
  f.id = new_id();
  write_file_atomic(data_path(f.id), data);
  return adopt(f.id, filename, purpose);
}

StoredFile FileStore::adopt(const std::string& id, const std::string& filename,
                            const std::string& purpose) {
  StoredFile f;
  f.id = id;
  f.filename = filename;
  f.purpose = purpose;
  std::error_code ec;
  auto size = std::filesystem::file_size(data_path(id), ec);
  f.bytes = ec ? 0 : static_cast<int64_t>(size);
  f.created_at = unix_now();
  std::lock_guard<std::mutex> lock(mu_);
  write_file_atomic(dir_ + "/" + id + ".json", to_json_text(f.json()));
  return f;
}

std::optional<StoredFile> FileStore::get(const std::string& id) const {
  if (!valid_id(id)) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  auto text = read_file(dir_ + "/" + id + ".json");
  if (!text) return std::nullopt;
  return from_json(*text);
}

std::vector<StoredFile> FileStore::list() const {
  std::vector<StoredFile> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& name : list_files(dir_, ".json"))
    if (auto text = read_file(dir_ + "/" + name))
      if (auto f = from_json(*text)) out.push_back(*f);
  std::stable_sort(out.begin(), out.end(), [](const StoredFile& a, const StoredFile& b) {
    return a.created_at > b.created_at;
  });
  return out;
}

bool FileStore::remove(const std::string& id) {
  if (!valid_id(id)) return false;
  std::lock_guard<std::mutex> lock(mu_);
  std::error_code ec;
  // The object first: once it is gone the file no longer exists for the API.
  const bool existed = std::filesystem::remove(dir_ + "/" + id + ".json", ec);
  std::filesystem::remove(data_path(id), ec);
  return existed;
}

}  // namespace herd::server
