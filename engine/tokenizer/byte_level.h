// GPT-2's byte <-> unicode mapping used by byte-level BPE vocabularies (Llama 3): printable
// Latin-1 bytes map to themselves, the other 68 bytes to U+0100.. in order, so every byte is a
// visible character in tokenizer.json.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herd::byte_level {

// The code point byte b is written as in a byte-level vocabulary.
uint32_t byte_to_codepoint(uint8_t b);

// UTF-8 text of byte_to_codepoint(b).
const std::string& byte_to_text(uint8_t b);

// Inverse: raw bytes of a vocabulary string; nullopt when it holds a character outside the
// mapping (such a string is not a byte-level token).
std::optional<std::string> text_to_bytes(std::string_view token);

}  // namespace herd::byte_level
