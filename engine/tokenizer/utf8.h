// UTF-8 helpers shared by the tokenizers and the incremental detokenizer. Decoding is "lossy"
// the way Rust's String::from_utf8_lossy and the WHATWG decoder are: each maximal invalid
// subpart becomes one U+FFFD, so splitting a byte stream at a decided boundary and converting
// the pieces separately gives the same text as converting it whole.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace herd::utf8 {

// Length of the valid UTF-8 sequence starting at s[i] (1..4), or 0 when the bytes there are
// not a complete valid sequence (invalid, or truncated by the end of s).
size_t valid_seq_len(std::string_view s, size_t i);

// Length of the longest prefix of s whose conversion can no longer change as more bytes are
// appended: everything except a trailing truncated-but-so-far-valid sequence.
size_t decided_prefix(std::string_view s);

// s with every maximal invalid subpart replaced by U+FFFD.
std::string lossy(std::string_view s);

bool is_valid(std::string_view s);

// Appends the UTF-8 encoding of code point cp (cp must be a Unicode scalar value).
void append(std::string& out, uint32_t cp);

}  // namespace herd::utf8
