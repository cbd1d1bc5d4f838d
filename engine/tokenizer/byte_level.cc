#include "engine/tokenizer/byte_level.h"

#include "engine/tokenizer/utf8.h"

namespace herd::byte_level {

namespace {

struct Tables {
  std::array<uint32_t, 256> to_cp{};
  std::array<std::string, 256> to_text;
  std::array<int, 324> from_cp{};  // code points used are all < 0x144; -1 = not mapped

  Tables() {
    from_cp.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      to_cp[b] = printable ? static_cast<uint32_t>(b) : next++;
      from_cp[to_cp[b]] = b;
      utf8::append(to_text[b], to_cp[b]);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

uint32_t byte_to_codepoint(uint8_t b) { return tables().to_cp[b]; }

const std::string& byte_to_text(uint8_t b) { return tables().to_text[b]; }

std::optional<std::string> text_to_bytes(std::string_view token) {
  const Tables& t = tables();
  std::string out;
  out.reserve(token.size());
  size_t i = 0;
  while (i < token.size()) {
    size_t n = utf8::valid_seq_len(token, i);
    if (n == 0 || n > 2) return std::nullopt;
    uint32_t cp = n == 1 ? static_cast<uint8_t>(token[i])
                         : ((static_cast<uint8_t>(token[i]) & 0x1Fu) << 6) |
                               (static_cast<uint8_t>(token[i + 1]) & 0x3Fu);
    if (cp >= t.from_cp.size() || t.from_cp[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(t.from_cp[cp]));
    i += n;
  }
  return out;
}

}  // namespace herd::byte_level
