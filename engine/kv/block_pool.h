// BlockPool: the fixed set of KV blocks and their reference counts. Pure bookkeeping — the KV
// memory itself lives in the backend; a block here is only an id in [0, num_blocks).
//
// Each block is in exactly one state:
//   free     ref 0, no key        — on the free stack, handed out first
//   cached   ref 0, has a key     — in the LRU list (head evicted first) and in the key map;
//                                   a lookup can revive it, allocate() evicts it when no free
//                                   block is left
//   owned    ref > 0              — held by that many block tables; may have a key (then a
//                                   lookup finds it and another sequence can share it)
// release() is the one funnel through which every reference is dropped.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/kv/block_hash.h"
#include "engine/kv/lru_block_list.h"

namespace herd {

class BlockPool {
 public:
  // Throws herd::InvalidArgument naming num_blocks / block_size when not positive.
  BlockPool(int num_blocks, int block_size, bool enable_caching);

  int num_blocks() const { return int(blocks_.size()); }
  int block_size() const { return block_size_; }
  bool caching_enabled() const { return enable_caching_; }

  int num_free_blocks() const { return int(free_.size()) + lru_.size(); }  // free + cached
  int num_cached_blocks() const { return lru_.size(); }
  int num_owned_blocks() const { return num_blocks() - num_free_blocks(); }
  double usage() const { return double(num_owned_blocks()) / num_blocks(); }
  int64_t num_evictions() const { return evictions_; }

  int ref_count(int32_t block) const { return blocks_[block].ref; }
  bool has_key(int32_t block) const { return blocks_[block].has_key; }

  // The block registered under `key` (owned or cached), or -1.
  int32_t lookup(const BlockKey& key) const;

  // n fresh blocks with ref count 1 appended to *out, taking free blocks first and evicting
  // cached ones (LRU head first) only then. All or nothing: false and no change when fewer
  // than n are available.
  bool allocate(int n, std::vector<int32_t>* out);

  // One more reference on each block (a prefix-cache hit or a fork). A cached block leaves the
  // LRU list and becomes owned again.
  void acquire(std::span<const int32_t> blocks);

  // Drops one reference on each block, in order. A block reaching ref 0 becomes cached (if it
  // has a key) at the LRU tail, else free. So the caller lists blocks in the order it wants
  // them evicted: first listed, first evicted.
  void release(std::span<const int32_t> blocks);

  // Registers an owned, full, computed block under `key`. No-op when caching is off, when the
  // block already has a key, or when another block already holds this key (two sequences
  // computed the same prefix at once: the second copy just stays unregistered).
  void cache_full_block(int32_t block, const BlockKey& key);

  // Cached blocks from next-to-evict to last; for tests.
  std::vector<int32_t> cached_in_eviction_order() const { return lru_.to_vector(); }

  // Throws std::logic_error describing the first broken invariant (state partition, key map
  // consistency, counts).
  void check_invariants() const;

 private:
  struct Block {
    int32_t ref = 0;
    bool has_key = false;
    BlockKey key;
  };
  void evict(int32_t block);

  int block_size_;
  bool enable_caching_;
  std::vector<Block> blocks_;
  std::vector<int32_t> free_;  // stack; back() handed out next
  LruBlockList lru_;
  std::unordered_map<BlockKey, int32_t, BlockKeyHasher> by_key_;
  int64_t evictions_ = 0;
};

}  // namespace herd
