// KvCacheManager: the three calls a scheduler needs (after vLLM v1's kv_cache_manager), over a
// BlockPool and per-sequence BlockTables:
//   1. find_cached_prefix  — longest run of cached FULL blocks matching a sequence's tokens,
//                            never all of its tokens (the last one must be computed to get
//                            logits), so at most (num_tokens - 1) / block_size blocks;
//   2. allocate_slots      — make room for N more tokens (taking any prefix hits found by 1),
//                            or say no without changing anything;
//   3. free                — drop a table's references, tail first, so a freed sequence's last
//                            blocks are evicted before its (more shareable) first ones.
// Plus fork (share a prefix of another table, for n > 1 samples of one prompt) and
// commit_computed (key and register blocks once their tokens' KV has been computed — the
// engine has run the step, so a hit never points at KV still being written).
// See engine/kv/README.md for ownership and invariants. Not thread-safe: one engine thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/kv/block_pool.h"
#include "engine/kv/block_table.h"

namespace herd {

struct KvStats {
  int num_blocks = 0;
  int free_blocks = 0;    // free or cached (allocatable)
  int cached_blocks = 0;  // ref 0 with a key
  double usage = 0.0;     // fraction of blocks owned
  int64_t prefix_queries_tokens = 0;
  int64_t prefix_hits_tokens = 0;
  int64_t evictions = 0;
};

class KvCacheManager {
 public:
  // server_salt: the root of every key chain. Unset (the default): 32 bytes from the kernel
  // CSPRNG, so keys are unguessable and no two managers (processes, restarts) agree on them.
  // Set it only to make keys reproducible (tests, `--prefix-cache-salt`).
  KvCacheManager(int num_blocks, int block_size, bool enable_caching,
                 std::optional<std::string> server_salt = std::nullopt);

  BlockPool& pool() { return pool_; }
  const BlockPool& pool() const { return pool_; }
  int block_size() const { return pool_.block_size(); }
  int blocks_for(int num_tokens) const { return (num_tokens + block_size() - 1) / block_size(); }

  // 1. Blocks of the longest cached prefix of `in.tokens` (empty with caching off). `table`
  // must be empty; its key chain is extended as needed. Takes no references.
  std::vector<int32_t> find_cached_prefix(BlockTable& table, const KeyInputs& in);

  // 2. Appends `hits` (from find_cached_prefix, taking a reference on each) and then fresh
  // blocks until the table has slots for `num_tokens` tokens in total. All or nothing.
  // Returns how many blocks this took out of the pool's free count (fresh blocks plus hits
  // that were cached at ref 0), or -1 when there were not enough and nothing changed.
  int allocate_slots(BlockTable& table, int num_tokens, std::span<const int32_t> hits = {});

  // How many blocks allocate_slots(table, num_tokens, hits) would take from the free count.
  int blocks_taken_by(const BlockTable& table, int num_tokens, std::span<const int32_t> hits) const;

  // 3. Releases every block of `table` (last block first) and empties it; keys are kept.
  void free(BlockTable& table);

  // Makes the empty table `dst` share the first `num_blocks` blocks of `src` (one more
  // reference each). Those blocks must be full and computed.
  void fork(BlockTable& dst, const BlockTable& src, int num_blocks);

  // The first `num_computed_tokens` tokens of the table's sequence now have KV: keys and
  // registers the blocks that became full. With caching off it only advances num_committed.
  void commit_computed(BlockTable& table, const KeyInputs& in, int num_computed_tokens);

  // Counts a prefix-cache lookup that was used (at admission): `queried` tokens, `hit` of them
  // found computed.
  void record_prefix_query(int queried, int hit);

  KvStats stats() const;

  // Pool invariants plus: every block's ref count equals the number of `tables` listing it.
  // Throws std::logic_error naming the first violation.
  void check_invariants(std::span<const BlockTable* const> tables) const;

 private:
  void ensure_keys(BlockTable& table, const KeyInputs& in, int num_full_blocks) const;

  BlockPool pool_;
  BlockKey server_root_;
  int64_t prefix_queries_ = 0;
  int64_t prefix_hits_ = 0;
};

}  // namespace herd
