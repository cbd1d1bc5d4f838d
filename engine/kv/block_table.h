// BlockTable: one holder's view of the KV pool — the physical blocks of a sequence in logical
// order (block i holds tokens [i*block_size, (i+1)*block_size)). Every block listed holds one
// reference on it; the KvCacheManager is the only code that adds or removes entries.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/kv/block_hash.h"

namespace herd {

struct BlockTable {
  std::vector<int32_t> blocks;  // physical block ids, logical order
  // keys[i] is the key of the sequence's i-th FULL block of tokens. Keys depend only on tokens,
  // which are append-only, so they survive a free (a preempted sequence reuses them).
  std::vector<BlockKey> keys;
  // blocks[0, num_committed) are full, computed and offered to the prefix cache.
  int num_committed = 0;

  int num_blocks() const { return int(blocks.size()); }
  bool empty() const { return blocks.empty(); }
};

}  // namespace herd
