// Prefix-cache keys. A FULL block of KV is identified by everything that determines its
// contents: the key of the block before it (so the whole prefix is covered), its token ids, and
// any extra keys of the inputs that overlap it (an image's content hash, ...). The chain starts
// from a root derived from the per-server salt and the request's cache_salt, so tenants never
// share pages.
//
// The key is SHA-256 (32 bytes, OpenSSL libcrypto), the fix vLLM made for GHSA-rm76-4mrf-v9r8:
// a hit is trusted without comparing tokens, so the key must be collision resistant against
// someone who chooses the tokens, not just against chance (a fast non-cryptographic hash such
// as XXH3-128 is not). The server salt defaults to 32 bytes from the kernel CSPRNG, so keys of
// one process are unguessable from outside and never match another process's.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace herd {

struct BlockKey {
  std::array<unsigned char, 32> bytes{};
  friend bool operator==(const BlockKey&, const BlockKey&) = default;
  std::string hex() const;  // 64 lowercase hex digits
};

struct BlockKeyHasher {
  // The key is a SHA-256 output rooted in a secret salt: its first 8 bytes are already uniform.
  size_t operator()(const BlockKey& k) const {
    size_t h;
    std::memcpy(&h, k.bytes.data(), sizeof h);
    return h;
  }
};

// Tokens [start, end) of a sequence whose KV also depends on `content` (e.g. the placeholder
// tokens of an image and the image's hash). Every block overlapping the range includes it.
struct ExtraKey {
  int32_t start = 0;
  int32_t end = 0;
  BlockKey content;
};

// A sequence's tokens without copying them: its (shared) prompt followed by its outputs.
class TokenSpan {
 public:
  TokenSpan() = default;
  TokenSpan(std::span<const int32_t> prompt, std::span<const int32_t> output)
      : prompt_(prompt), output_(output) {}
  int size() const { return int(prompt_.size() + output_.size()); }
  int32_t operator[](int i) const {
    return size_t(i) < prompt_.size() ? prompt_[i] : output_[i - prompt_.size()];
  }

 private:
  std::span<const int32_t> prompt_;
  std::span<const int32_t> output_;
};

// What a sequence contributes to its blocks' keys besides the tokens.
struct KeyInputs {
  TokenSpan tokens;
  std::string_view cache_salt;      // per request (Request::cache_salt); "" = none
  std::span<const ExtraKey> extra;  // sorted or not; only overlapping ones count
};

// SHA-256 of arbitrary bytes, as a BlockKey.
BlockKey hash_bytes(const void* data, size_t size);

// 32 bytes from the kernel CSPRNG (getrandom(2)); throws std::runtime_error if it fails.
std::string random_salt();

// The root of every chain of one server: SHA-256 of its salt.
BlockKey server_root_key(std::string_view server_salt);

// The parent of a sequence's first block: SHA-256(server root (32 bytes) | request cache_salt).
BlockKey root_key(const BlockKey& server_root, std::string_view cache_salt);

// Key of the block holding tokens [begin, end) of `in.tokens`, given its parent's key:
// SHA-256(parent (32) | end - begin (int32) | tokens (int32 each) | per overlapping extra key:
// start, end (int32 each), content (32)). Integers are little-endian (the host order of every
// supported target). Fixed-width fields and the token count make the encoding injective.
BlockKey block_key(const BlockKey& parent, const KeyInputs& in, int begin, int end);

}  // namespace herd
