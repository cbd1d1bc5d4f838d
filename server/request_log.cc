#include "server/request_log.h"

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

namespace herd::server {

std::string format_request_log_line(const RequestLogEntry& e) {
  nlohmann::ordered_json j;
  j["ts"] =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  j["event"] = "request";
  j["id"] = e.id;
  j["method"] = e.method;
  j["path"] = e.path;
  j["status"] = e.status;
  j["prompt_tokens"] = e.prompt_tokens;
  j["completion_tokens"] = e.completion_tokens;
  j["ttft_ms"] = e.ttft_s < 0 ? nlohmann::ordered_json()
                              : nlohmann::ordered_json(std::round(e.ttft_s * 1e6) / 1e3);
  j["total_ms"] = std::round(e.total_s * 1e6) / 1e3;
  if (!e.finish_reason.empty()) j["finish_reason"] = e.finish_reason;
  if (!e.error.empty()) j["error"] = e.error;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void RequestLog::write(const RequestLogEntry& e) {
  if (!out_) return;
  std::string line = format_request_log_line(e);
  std::lock_guard<std::mutex> lock(mu_);
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

}  // namespace herd::server
