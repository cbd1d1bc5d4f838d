#include "engine/kv/block_hash.h"

#include <xxhash.h>

#include <cstring>
#include <vector>

namespace herd {

BlockKey hash_bytes(const void* data, size_t size) {
  const XXH128_hash_t h = XXH3_128bits(data, size);
  return BlockKey{h.low64, h.high64};
}

BlockKey root_key(const BlockKey& server_root, std::string_view cache_salt) {
  std::vector<unsigned char> buf(sizeof(BlockKey) + cache_salt.size());
  std::memcpy(buf.data(), &server_root, sizeof(BlockKey));
  if (!cache_salt.empty())
    std::memcpy(buf.data() + sizeof(BlockKey), cache_salt.data(), cache_salt.size());
  return hash_bytes(buf.data(), buf.size());
}

BlockKey block_key(const BlockKey& parent, const KeyInputs& in, int begin, int end) {
  // Layout: parent (16 bytes) | tokens (4 bytes each) | per overlapping extra key:
  // start, end (4 bytes each), content (16 bytes). Fixed-width fields, so no two different
  // inputs serialize to the same bytes.
  size_t size = sizeof(parent) + sizeof(int32_t) * size_t(end - begin);
  for (const ExtraKey& e : in.extra)
    if (e.start < end && e.end > begin) size += 2 * sizeof(int32_t) + sizeof(BlockKey);
  thread_local std::vector<unsigned char> buf;
  buf.resize(size);
  unsigned char* p = buf.data();
  auto put = [&p](const void* src, size_t n) {
    std::memcpy(p, src, n);
    p += n;
  };
  put(&parent, sizeof(parent));
  for (int i = begin; i < end; ++i) {
    const int32_t t = in.tokens[i];
    put(&t, sizeof(t));
  }
  for (const ExtraKey& e : in.extra) {
    if (e.start < end && e.end > begin) {
      put(&e.start, sizeof(e.start));
      put(&e.end, sizeof(e.end));
      put(&e.content, sizeof(e.content));
    }
  }
  return hash_bytes(buf.data(), buf.size());
}

}  // namespace herd
