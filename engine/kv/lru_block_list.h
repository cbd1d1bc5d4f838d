// LruBlockList: an intrusive doubly linked list of block ids in eviction order (head = evicted
// first). Links live in two arrays indexed by block id, so push_back, pop_front and removing a
// block from the middle (a cache hit on a ref-0 block) are all O(1) with no allocation.
#pragma once

#include <cstdint>
#include <vector>

namespace herd {

class LruBlockList {
 public:
  explicit LruBlockList(int num_blocks);

  bool empty() const { return size_ == 0; }
  int size() const { return size_; }
  bool contains(int32_t block) const { return in_list_[block]; }
  int32_t front() const { return next_[sentinel_]; }  // only when !empty()

  void push_back(int32_t block);
  void remove(int32_t block);
  int32_t pop_front();

  // Blocks from head (evicted first) to tail; for invariant checks and tests.
  std::vector<int32_t> to_vector() const;

 private:
  int32_t sentinel_;  // == num_blocks; next_[sentinel_] is the head, prev_[sentinel_] the tail
  std::vector<int32_t> prev_, next_;
  std::vector<bool> in_list_;
  int size_ = 0;
};

}  // namespace herd
