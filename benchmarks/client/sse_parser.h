// Splits a text/event-stream body into its events' data payloads. Bytes arrive in arbitrary
// pieces (one network read may hold half an event or several), so the parser keeps the unfinished
// tail between calls. Lines may end in \n or \r\n; "data:" lines of one event are joined with
// "\n" (the SSE rule); comments (":...") and other fields are ignored.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace herd::bench {

class SseParser {
 public:
  // The payloads of the events that `bytes` completes, in order.
  std::vector<std::string> feed(std::string_view bytes);
  // True when bytes of an event that has not ended yet are held back.
  bool has_partial() const { return !line_.empty() || in_event_; }

 private:
  std::string line_;  // the current line so far
  std::string data_;  // the current event's data so far
  bool in_event_ = false;
};

}  // namespace herd::bench
