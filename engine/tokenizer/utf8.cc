#include "engine/tokenizer/utf8.h"

namespace herd::utf8 {

namespace {

// How many bytes of a sequence starting at s[i] are a valid prefix of some well-formed
// sequence (Unicode Table 3-7), and how long the full sequence would be.
struct Prefix {
  size_t valid = 0;  // bytes that are a valid (partial or complete) sequence prefix
  size_t need = 0;   // total length of the sequence the lead byte announces; 0 if invalid lead
};

Prefix scan(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t c = b(i);
  if (c < 0x80) return {1, 1};
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    need = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return {0, 0};
  }
  size_t k = 1;
  for (; k < need && i + k < s.size(); ++k) {
    uint8_t x = b(i + k);
    uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (x < l || x > h) break;
  }
  return {k, need};
}

}  // namespace

size_t valid_seq_len(std::string_view s, size_t i) {
  Prefix p = scan(s, i);
  return p.need != 0 && p.valid == p.need ? p.need : 0;
}

size_t decided_prefix(std::string_view s) {
  // Only the last 3 bytes can hold a truncated sequence; look back for its lead byte.
  size_t n = s.size();
  size_t start = n > 3 ? n - 3 : 0;
  for (size_t i = n; i-- > start;) {
    uint8_t c = static_cast<uint8_t>(s[i]);
    if ((c & 0xC0) == 0x80) continue;  // continuation: keep looking for the lead
    Prefix p = scan(s, i);
    // Truncated: every byte to the end is a valid prefix and more are needed.
    if (p.need > 1 && p.valid == n - i && p.valid < p.need) return i;
    return n;
  }
  return n;
}

std::string lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    Prefix p = scan(s, i);
    if (p.need != 0 && p.valid == p.need) {
      out.append(s.substr(i, p.need));
      i += p.need;
    } else {
      out.append("\xEF\xBF\xBD");
      i += p.valid == 0 ? 1 : p.valid;  // one U+FFFD per maximal invalid subpart
    }
  }
  return out;
}

bool is_valid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t n = valid_seq_len(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace herd::utf8
