// The merge step of BPE over token ids: repeatedly merge the adjacent pair with the lowest
// merge rank (leftmost first on ties) until no pair has a merge, exactly as Hugging Face
// tokenizers' Word::merge_all does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace herd {

class BpeMerges {
 public:
  // Registers "left right -> merged" with priority `rank` (lower merges first). A pair given
  // twice keeps the later entry, as Hugging Face's HashMap collect does.
  void add(int32_t left, int32_t right, int32_t rank, int32_t merged);
  size_t size() const { return map_.size(); }
  void reserve(size_t n) { map_.reserve(n); }

  // Merges `ids` in place. Picks the quadratic scan for short words (cheaper there) and the
  // heap for long ones (sentencepiece-style tokenizers BPE a whole text at once).
  void apply(std::vector<int32_t>& ids) const;
  // The two strategies, public so that tests can check they agree.
  void apply_scan(std::vector<int32_t>& ids) const;
  void apply_heap(std::vector<int32_t>& ids) const;

 private:
  struct Entry {
    int32_t rank;
    int32_t merged;
  };
  static uint64_t key(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }
  const Entry* find(int32_t l, int32_t r) const {
    auto it = map_.find(key(l, r));
    return it == map_.end() ? nullptr : &it->second;
  }
  std::unordered_map<uint64_t, Entry> map_;
};

}  // namespace herd
