#include "engine/kv/lru_block_list.h"

#include <stdexcept>

namespace herd {

LruBlockList::LruBlockList(int num_blocks)
    : sentinel_(num_blocks),
      prev_(num_blocks + 1, num_blocks),
      next_(num_blocks + 1, num_blocks),
      in_list_(num_blocks, false) {}

void LruBlockList::push_back(int32_t block) {
  if (in_list_[block]) throw std::logic_error("LruBlockList: block already listed");
  const int32_t tail = prev_[sentinel_];
  next_[tail] = block;
  prev_[block] = tail;
  next_[block] = sentinel_;
  prev_[sentinel_] = block;
  in_list_[block] = true;
  ++size_;
}

void LruBlockList::remove(int32_t block) {
  if (!in_list_[block]) throw std::logic_error("LruBlockList: block not listed");
  next_[prev_[block]] = next_[block];
  prev_[next_[block]] = prev_[block];
  prev_[block] = next_[block] = sentinel_;
  in_list_[block] = false;
  --size_;
}

int32_t LruBlockList::pop_front() {
  if (size_ == 0) throw std::logic_error("LruBlockList: pop_front on empty list");
  const int32_t block = next_[sentinel_];
  remove(block);
  return block;
}

std::vector<int32_t> LruBlockList::to_vector() const {
  std::vector<int32_t> out;
  out.reserve(size_);
  for (int32_t b = next_[sentinel_]; b != sentinel_; b = next_[b]) out.push_back(b);
  return out;
}

}  // namespace herd
