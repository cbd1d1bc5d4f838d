// Prefix-cache keys. A FULL block of KV is identified by everything that determines its
// contents: the key of the block before it (so the whole prefix is covered), its token ids, and
// any extra keys of the inputs that overlap it (an image's content hash, ...). The chain starts
// from a root derived from the per-server salt and the request's cache_salt, so tenants never
// share pages. The key is XXH3-128: collision resistant enough that a hit is trusted without
// comparing tokens (vLLM's lesson: a 64-bit key is not).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace herd {

struct BlockKey {
  uint64_t lo = 0;
  uint64_t hi = 0;
  friend bool operator==(const BlockKey&, const BlockKey&) = default;
};

struct BlockKeyHasher {
  size_t operator()(const BlockKey& k) const {
    return size_t(k.lo ^ (k.hi * 0x9E3779B97F4A7C15ull));
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

// XXH3-128 of arbitrary bytes, as a BlockKey.
BlockKey hash_bytes(const void* data, size_t size);

// The parent of a sequence's first block: hash(server root, request cache_salt).
BlockKey root_key(const BlockKey& server_root, std::string_view cache_salt);

// Key of the block holding tokens [begin, end) of `in.tokens`, given its parent's key.
BlockKey block_key(const BlockKey& parent, const KeyInputs& in, int begin, int end);

}  // namespace herd
