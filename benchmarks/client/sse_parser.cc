#include "benchmarks/client/sse_parser.h"

namespace herd::bench {

std::vector<std::string> SseParser::feed(std::string_view bytes) {
  std::vector<std::string> out;
  for (char c : bytes) {
    if (c != '\n') {
      line_ += c;
      continue;
    }
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    if (line_.empty()) {  // blank line: the event ends
      if (in_event_) out.push_back(std::move(data_));
      data_.clear();
      in_event_ = false;
    } else if (line_.rfind("data:", 0) == 0) {
      std::string_view v = std::string_view(line_).substr(5);
      if (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      if (in_event_) data_ += '\n';
      data_ += v;
      in_event_ = true;
    }
    line_.clear();
  }
  return out;
}

}  // namespace herd::bench
