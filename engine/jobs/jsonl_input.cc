#include "engine/jobs/jsonl_input.h"

#include "engine/common/error.h"

namespace herd {

JsonlInput::JsonlInput(const std::string& path, size_t max_line_bytes)
    : path_(path), in_(path, std::ios::binary), max_line_bytes_(max_line_bytes) {
  if (!in_) throw Error(std::string("cannot open ").append(path));
}

// Reads one line (without its '\n') into `line`, keeping at most `limit` bytes; returns false at
// the end of the file, and sets `too_long` when bytes were dropped (the rest of the line is
// consumed, so the next call starts at the next line).
static bool read_line(std::streambuf& in, size_t limit, std::string& line, bool& too_long) {
  line.clear();
  too_long = false;
  int c = in.sbumpc();
  if (c == std::char_traits<char>::eof()) return false;
  for (; c != std::char_traits<char>::eof() && c != '\n'; c = in.sbumpc()) {
    if (line.size() < limit) {
      line.push_back(char(c));
    } else {
      too_long = true;
    }
  }
  return true;
}

std::optional<JsonlLine> JsonlInput::next() {
  std::string line;
  bool too_long = false;
  while (read_line(*in_.rdbuf(), max_line_bytes_, line, too_long)) {
    ++line_no_;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!too_long && line.find_first_not_of(" \t") == std::string::npos) continue;
    JsonlLine out;
    out.line_no = line_no_;
    if (too_long) {
      out.error = std::string("line is longer than ")
                      .append(std::to_string(max_line_bytes_))
                      .append(" bytes");
      return out;
    }
    out.value = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (out.value.is_discarded()) {
      out.value = nullptr;
      out.error = "not valid JSON";
    } else if (!out.value.is_object()) {
      out.value = nullptr;
      out.error = "not a JSON object";
    }
    return out;
  }
  return std::nullopt;
}

}  // namespace herd
