#include "engine/jobs/result_journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "engine/common/error.h"

namespace herd {

namespace {

std::string errno_text() { return std::strerror(errno); }

}  // namespace

std::string ResultJournal::key_of(const nlohmann::json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

ResultJournal::ResultJournal(const std::string& path, std::string key_field)
    : path_(path), key_field_(std::move(key_field)) {
  // Read what a previous run wrote: every complete line is a record; bytes after the last '\n'
  // are a record a kill interrupted, cut below.
  int64_t complete_bytes = 0;
  int64_t file_bytes = 0;
  {
    std::ifstream in(path, std::ios::binary);
    std::string line;
    int64_t line_no = 0;
    while (std::getline(in, line)) {
      const bool complete = !in.eof();  // getline stopped at a '\n', not at the end
      file_bytes += int64_t(line.size()) + (complete ? 1 : 0);
      if (!complete) break;
      ++line_no;
      complete_bytes = file_bytes;
      if (line.empty()) continue;
      nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
      if (record.is_discarded() || !record.is_object() || !record.contains(key_field_)) {
        throw Error(
            std::string(path)
                .append(":")
                .append(std::to_string(line_no))
                .append(": not a result record with \"")
                .append(key_field_)
                .append("\"; refusing to append to this file (move it away to start over)"));
      }
      done_.insert(key_of(record[key_field_]));
    }
  }
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw Error(std::string("cannot open ").append(path).append(": ").append(errno_text()));
  if (file_bytes > complete_bytes) {
    if (::ftruncate(fd_, complete_bytes) != 0) {
      const std::string why = errno_text();
      ::close(fd_);
      throw Error(
          std::string("cannot cut the torn last line of ").append(path).append(": ").append(why));
    }
    torn_cut_ = 1;
  }
}

ResultJournal::~ResultJournal() {
  if (fd_ >= 0) ::close(fd_);
}

bool ResultJournal::done(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  return done_.count(key) != 0;
}

int64_t ResultJournal::num_done() const {
  std::lock_guard<std::mutex> lock(mu_);
  return int64_t(done_.size());
}

void ResultJournal::append(const nlohmann::json& record, bool sync) { append_record(record, sync); }

void ResultJournal::append_ordered(const nlohmann::ordered_json& record, bool sync) {
  append_record(record, sync);
}

template <class Json>
void ResultJournal::append_record(const Json& record, bool sync) {
  if (!record.is_object() || !record.contains(key_field_)) {
    throw Error(std::string("result record without \"").append(key_field_).append("\""));
  }
  const Json& k = record[key_field_];
  const std::string key = k.is_string() ? k.template get<std::string>() : k.dump();
  // Invalid UTF-8 in generated text must not make the line unreadable JSON: replace it.
  std::string line = record.dump(-1, ' ', false, Json::error_handler_t::replace);
  line.push_back('\n');
  append_line(key, std::move(line), sync);
}

void ResultJournal::append_line(const std::string& key, std::string line, bool sync) {
  std::lock_guard<std::mutex> lock(mu_);
  if (done_.count(key) != 0) {
    throw Error(
        std::string("result for \"").append(key).append("\" written twice to ").append(path_));
  }
  // One write() per line with O_APPEND: a kill leaves the line whole or torn at the end, never
  // interleaved with another.
  const off_t size_before = ::lseek(fd_, 0, SEEK_END);
  size_t off = 0;
  while (off < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + off, line.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string why = errno_text();
      // A partial line (disk full) would glue the next record onto it: take it back.
      if (off > 0 && size_before >= 0 && ::ftruncate(fd_, size_before) != 0) {
        // Nothing more to do: the reopen of a rerun cuts a torn line anyway.
      }
      throw Error(std::string("cannot write ").append(path_).append(": ").append(why));
    }
    off += size_t(n);
  }
  if (sync && ::fdatasync(fd_) != 0) {
    throw Error(std::string("cannot sync ").append(path_).append(": ").append(errno_text()));
  }
  done_.insert(key);
}

}  // namespace herd
