#include "engine/kv/block_pool.h"

#include <stdexcept>
#include <string>

#include "engine/common/error.h"

namespace herd {

namespace {
[[noreturn]] void broken(const std::string& what) {
  throw std::logic_error("BlockPool invariant broken: " + what);
}
}  // namespace

BlockPool::BlockPool(int num_blocks, int block_size, bool enable_caching)
    : block_size_(block_size),
      enable_caching_(enable_caching),
      blocks_(num_blocks > 0 ? num_blocks : 0),
      lru_(num_blocks > 0 ? num_blocks : 0) {
  if (num_blocks <= 0) throw InvalidArgument("num_blocks", "KV pool: num_blocks must be > 0");
  if (block_size <= 0) throw InvalidArgument("block_size", "KV pool: block_size must be > 0");
  free_.reserve(num_blocks);
  for (int32_t b = num_blocks - 1; b >= 0; --b) free_.push_back(b);  // block 0 handed out first
}

int32_t BlockPool::lookup(const BlockKey& key) const {
  const auto it = by_key_.find(key);
  return it == by_key_.end() ? -1 : it->second;
}

void BlockPool::evict(int32_t block) {
  Block& b = blocks_[block];
  by_key_.erase(b.key);
  b.has_key = false;
  b.key = BlockKey{};
  ++evictions_;
}

bool BlockPool::allocate(int n, std::vector<int32_t>* out) {
  if (n < 0) throw std::logic_error("BlockPool::allocate: negative count");
  if (n > num_free_blocks()) return false;
  for (int i = 0; i < n; ++i) {
    int32_t block;
    if (!free_.empty()) {
      block = free_.back();
      free_.pop_back();
    } else {
      block = lru_.pop_front();
      evict(block);
    }
    blocks_[block].ref = 1;
    out->push_back(block);
  }
  return true;
}

void BlockPool::acquire(std::span<const int32_t> blocks) {
  for (int32_t block : blocks) {
    Block& b = blocks_[block];
    if (b.ref == 0) {
      if (!b.has_key) throw std::logic_error("BlockPool::acquire: block is free, not cached");
      lru_.remove(block);
    }
    ++b.ref;
  }
}

void BlockPool::release(std::span<const int32_t> blocks) {
  for (int32_t block : blocks) {
    Block& b = blocks_[block];
    if (b.ref <= 0)
      throw std::logic_error("BlockPool::release: block " + std::to_string(block) + " not owned");
    if (--b.ref > 0) continue;
    if (b.has_key) {
      lru_.push_back(block);
    } else {
      free_.push_back(block);
    }
  }
}

void BlockPool::cache_full_block(int32_t block, const BlockKey& key) {
  if (!enable_caching_) return;
  Block& b = blocks_[block];
  if (b.ref <= 0) throw std::logic_error("BlockPool::cache_full_block: block not owned");
  if (b.has_key || by_key_.count(key)) return;
  b.has_key = true;
  b.key = key;
  by_key_.emplace(key, block);
}

void BlockPool::check_invariants() const {
  const int n = num_blocks();
  std::vector<int> seen_free(n, 0);
  for (int32_t b : free_) {
    if (b < 0 || b >= n) broken("free stack holds out-of-range id " + std::to_string(b));
    if (++seen_free[b] > 1) broken("block " + std::to_string(b) + " twice on the free stack");
  }
  int keyed = 0;
  for (int32_t b = 0; b < n; ++b) {
    const Block& blk = blocks_[b];
    const std::string id = "block " + std::to_string(b);
    if (blk.ref < 0) broken(id + " has negative ref count");
    const bool in_free = seen_free[b] > 0, in_lru = lru_.contains(b);
    if (blk.ref > 0 && (in_free || in_lru)) broken(id + " is owned but listed as free/cached");
    if (blk.ref == 0 && blk.has_key && (!in_lru || in_free))
      broken(id + " is cached but not (only) in the LRU");
    if (blk.ref == 0 && !blk.has_key && (!in_free || in_lru))
      broken(id + " is free but not (only) on the free stack");
    if (blk.has_key) {
      ++keyed;
      if (!enable_caching_) broken(id + " has a key with caching off");
      const auto it = by_key_.find(blk.key);
      if (it == by_key_.end() || it->second != b) broken(id + " key not mapped back to it");
    }
  }
  if (keyed != int(by_key_.size())) broken("key map holds keys of no block");
  if (int(lru_.to_vector().size()) != lru_.size()) broken("LRU size mismatch");
  int owned = 0;
  for (const Block& blk : blocks_) owned += blk.ref > 0;
  if (owned + int(free_.size()) + lru_.size() != n) broken("owned + free + cached != num_blocks");
}

}  // namespace herd
