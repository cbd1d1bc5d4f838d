// Reads a JSONL job input (rs prompts, OpenAI Batch requests) one line at a time, with its line
// number, so that a bad line is reported ("line 17: ...") and skipped instead of ending the job
// or vanishing. Blank lines are skipped silently (editors leave them at the end of files).
#pragma once

#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace herd {

struct JsonlLine {
  int64_t line_no = 0;  // 1-based
  // The parsed value; empty (discarded) when the line is not JSON, and `error` says why.
  nlohmann::json value;
  std::string error;
  bool ok() const { return error.empty(); }
};

class JsonlInput {
 public:
  // Lines longer than this are reported as errors (a job input is not a place for a 1 GB line;
  // the limit keeps one bad line from taking all memory).
  static constexpr size_t kMaxLineBytes = size_t(64) << 20;

  // Throws herd::Error naming the path when the file cannot be opened.
  explicit JsonlInput(const std::string& path, size_t max_line_bytes = kMaxLineBytes);

  // The next non-blank line, or nullopt at the end of the file.
  std::optional<JsonlLine> next();

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ifstream in_;
  size_t max_line_bytes_;
  int64_t line_no_ = 0;
};

}  // namespace herd
