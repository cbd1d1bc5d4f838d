// The output file of a resumable job (rs, batch): JSONL, one record per finished item, appended
// with one write() per complete line. A kill -9 can leave at most a torn last line; reopening
// cuts it and reports the keys already written, so a rerun of the same command skips them and
// the file ends with exactly one record per item.
#pragma once

#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_set>

namespace herd {

class ResultJournal {
 public:
  // Opens (creating it if needed) `path` for appending. Existing complete lines must be JSON
  // objects with a `key_field` member (string or number): their keys become done(). A torn last
  // line (no '\n') is truncated away. Throws herd::Error naming the path and line when the file
  // cannot be opened or a complete line is not such a record (someone else's file: refusing is
  // safer than appending to it).
  ResultJournal(const std::string& path, std::string key_field);
  ~ResultJournal();
  ResultJournal(const ResultJournal&) = delete;
  ResultJournal& operator=(const ResultJournal&) = delete;

  // The key of a record: a string member as is, anything else as its JSON text ("7" for 7).
  static std::string key_of(const nlohmann::json& value);

  bool done(const std::string& key) const;
  int64_t num_done() const;
  // Lines cut when the file was reopened (0 or 1: the record a kill interrupted).
  int64_t torn_lines_cut() const { return torn_cut_; }

  // Appends `record` (must hold key_field; a key already written throws herd::Error: a job that
  // wrote an item twice has a bug). Thread-safe. `sync` fdatasyncs the file after the write
  // (durable across a power loss, not only a process kill).
  void append(const nlohmann::json& record, bool sync = false);
  // The same for a record built as ordered_json: its members are written in the order the
  // caller inserted them (OpenAI's batch output lists id, custom_id, response, error, in that
  // order). A separate name, not an overload: a braced list would fit both.
  void append_ordered(const nlohmann::ordered_json& record, bool sync = false);

  const std::string& path() const { return path_; }

 private:
  template <class Json>
  void append_record(const Json& record, bool sync);
  void append_line(const std::string& key, std::string line, bool sync);

  std::string path_;
  std::string key_field_;
  int fd_ = -1;
  int64_t torn_cut_ = 0;
  mutable std::mutex mu_;
  std::unordered_set<std::string> done_;
};

}  // namespace herd
