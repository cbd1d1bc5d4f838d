#include "server/multipart.h"

#include <cctype>

#include "engine/common/error.h"

namespace herd::server {

namespace {
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The value of `key` in a header's parameters ("form-data; name=\"file\"; filename=\"a\"").
std::optional<std::string> header_param(std::string_view header, std::string_view key) {
  size_t pos = 0;
  while ((pos = header.find(';', pos)) != std::string_view::npos) {
    ++pos;
    std::string_view rest = trim(header.substr(pos));
    size_t eq = rest.find('=');
    if (eq == std::string_view::npos) continue;
    if (lower(trim(rest.substr(0, eq))) != key) continue;
    std::string_view v = rest.substr(eq + 1);
    if (!v.empty() && v.front() == '"') {
      std::string out;
      for (size_t i = 1; i < v.size() && v[i] != '"'; ++i) {
        if (v[i] == '\\' && i + 1 < v.size()) ++i;
        out += v[i];
      }
      return out;
    }
    return std::string(trim(v.substr(0, v.find(';'))));
  }
  return std::nullopt;
}

[[noreturn]] void bad(const std::string& why) {
  throw InvalidArgument("file", "The multipart/form-data body is malformed: " + why);
}
}  // namespace

std::optional<std::string> multipart_boundary(std::string_view content_type) {
  size_t semi = content_type.find(';');
  if (lower(trim(content_type.substr(0, semi))) != "multipart/form-data") return std::nullopt;
  auto b = header_param(content_type, "boundary");
  if (!b || b->empty() || b->size() > 200) return std::nullopt;
  return b;
}

std::vector<FormPart> parse_multipart(std::string_view body, const std::string& boundary) {
  const std::string delim = "--" + boundary;
  std::vector<FormPart> parts;
  size_t pos = body.find(delim);
  if (pos == std::string_view::npos) bad("no boundary line");
  while (true) {
    pos += delim.size();
    if (body.substr(pos, 2) == "--") return parts;  // the closing delimiter
    if (body.substr(pos, 2) != "\r\n") bad("a boundary line is not followed by CRLF");
    pos += 2;
    size_t head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos) bad("a part has no end of headers");
    FormPart part;
    std::string_view heads = body.substr(pos, head_end - pos);
    while (!heads.empty()) {
      size_t eol = heads.find("\r\n");
      std::string_view h = heads.substr(0, eol);
      heads = eol == std::string_view::npos ? std::string_view() : heads.substr(eol + 2);
      size_t colon = h.find(':');
      if (colon == std::string_view::npos) bad("a part header has no ':'");
      std::string name = lower(trim(h.substr(0, colon)));
      std::string_view value = trim(h.substr(colon + 1));
      if (name == "content-disposition") {
        auto n = header_param(value, "name");
        if (!n) bad("a part has no name");
        part.name = *n;
        part.filename = header_param(value, "filename");
      } else if (name == "content-type") {
        part.content_type = std::string(value);
      }
    }
    size_t data_start = head_end + 4;
    size_t next = body.find("\r\n" + delim, data_start);
    if (next == std::string_view::npos) bad("a part is not closed by the boundary");
    part.data = std::string(body.substr(data_start, next - data_start));
    parts.push_back(std::move(part));
    pos = next + 2;
  }
}

}  // namespace herd::server
