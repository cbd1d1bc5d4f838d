// Durable state under `herd serve --state-dir`: small JSON documents replaced atomically (write
// a temporary file, fsync, rename over the old one, fsync the folder), so that a crash leaves
// either the old or the new version, never a torn one.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace herd::server {

// Writes `text` to `path` atomically (see above). Throws herd::Error naming the path.
void write_file_atomic(const std::string& path, const std::string& text);
// The whole file; nullopt when it does not exist. Throws herd::Error on other failures.
std::optional<std::string> read_file(const std::string& path);
// Creates `dir` and its parents. Throws herd::Error naming it.
void make_dirs(const std::string& dir);
// Names (not paths) of the files in `dir` that end with `suffix`, sorted.
std::vector<std::string> list_files(const std::string& dir, const std::string& suffix);

}  // namespace herd::server
