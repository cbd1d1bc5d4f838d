// One structured (JSON) line per finished request, written to stderr by default. The line is
// formatted first and written with one call, so lines from concurrent requests never mix.
#pragma once

#include <cstdio>
#include <mutex>
#include <string>

namespace herd::server {

struct RequestLogEntry {
  std::string id;
  std::string method;
  std::string path;
  int status = 0;
  int prompt_tokens = 0;
  int completion_tokens = 0;
  double ttft_s = -1.0;  // -1: not applicable / no token
  double total_s = 0.0;
  std::string finish_reason;
  std::string error;
};

std::string format_request_log_line(const RequestLogEntry& e);

class RequestLog {
 public:
  explicit RequestLog(std::FILE* out = stderr) : out_(out) {}
  void write(const RequestLogEntry& e);

 private:
  std::FILE* out_;
  std::mutex mu_;
};

}  // namespace herd::server
