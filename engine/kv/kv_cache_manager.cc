#include "engine/kv/kv_cache_manager.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace herd {

KvCacheManager::KvCacheManager(int num_blocks, int block_size, bool enable_caching,
                               std::optional<std::string> server_salt)
    : pool_(num_blocks, block_size, enable_caching),
      server_root_(server_root_key(server_salt ? *server_salt : random_salt())) {}

void KvCacheManager::ensure_keys(BlockTable& table, const KeyInputs& in,
                                 int num_full_blocks) const {
  const int bs = block_size();
  if (num_full_blocks * bs > in.tokens.size())
    throw std::logic_error("ensure_keys: block not full");
  while (table.keys.size() < size_t(num_full_blocks)) {
    const int i = int(table.keys.size());
    const BlockKey parent = i == 0 ? root_key(server_root_, in.cache_salt) : table.keys[i - 1];
    table.keys.push_back(block_key(parent, in, i * bs, (i + 1) * bs));
  }
}

std::vector<int32_t> KvCacheManager::find_cached_prefix(BlockTable& table, const KeyInputs& in) {
  std::vector<int32_t> hits;
  if (!pool_.caching_enabled() || in.tokens.size() == 0) return hits;
  if (!table.empty()) throw std::logic_error("find_cached_prefix: table not empty");
  const int max_blocks = (in.tokens.size() - 1) / block_size();
  for (int i = 0; i < max_blocks; ++i) {
    ensure_keys(table, in, i + 1);
    const int32_t block = pool_.lookup(table.keys[i]);
    if (block < 0) break;
    hits.push_back(block);
  }
  return hits;
}

int KvCacheManager::blocks_taken_by(const BlockTable& table, int num_tokens,
                                    std::span<const int32_t> hits) const {
  const int have = table.num_blocks() + int(hits.size());
  int taken = std::max(0, blocks_for(num_tokens) - have);
  for (int32_t b : hits) taken += pool_.ref_count(b) == 0;
  return taken;
}

int KvCacheManager::allocate_slots(BlockTable& table, int num_tokens,
                                   std::span<const int32_t> hits) {
  const int taken = blocks_taken_by(table, num_tokens, hits);
  if (taken > pool_.num_free_blocks()) return -1;
  if (!hits.empty()) {
    if (table.num_committed != table.num_blocks())
      throw std::logic_error("allocate_slots: hits after uncomputed blocks");
    pool_.acquire(hits);
    table.blocks.insert(table.blocks.end(), hits.begin(), hits.end());
    table.num_committed = table.num_blocks();  // hits are computed and already registered
  }
  const int fresh = std::max(0, blocks_for(num_tokens) - table.num_blocks());
  if (!pool_.allocate(fresh, &table.blocks)) throw std::logic_error("allocate_slots: pool refused");
  return taken;
}

void KvCacheManager::free(BlockTable& table) {
  std::reverse(table.blocks.begin(), table.blocks.end());
  pool_.release(table.blocks);
  table.blocks.clear();
  table.num_committed = 0;
}

void KvCacheManager::fork(BlockTable& dst, const BlockTable& src, int num_blocks) {
  if (!dst.empty()) throw std::logic_error("fork: destination table not empty");
  if (num_blocks > src.num_committed) throw std::logic_error("fork: source blocks not computed");
  const std::span<const int32_t> shared(src.blocks.data(), size_t(num_blocks));
  pool_.acquire(shared);
  dst.blocks.assign(shared.begin(), shared.end());
  dst.num_committed = num_blocks;
  for (size_t i = dst.keys.size(); i < size_t(num_blocks) && i < src.keys.size(); ++i)
    dst.keys.push_back(src.keys[i]);
}

void KvCacheManager::commit_computed(BlockTable& table, const KeyInputs& in,
                                     int num_computed_tokens) {
  const int full = std::min(num_computed_tokens / block_size(), table.num_blocks());
  if (full <= table.num_committed) return;
  if (pool_.caching_enabled()) {
    ensure_keys(table, in, full);
    for (int i = table.num_committed; i < full; ++i)
      pool_.cache_full_block(table.blocks[i], table.keys[i]);
  }
  table.num_committed = full;
}

void KvCacheManager::record_prefix_query(int queried, int hit) {
  prefix_queries_ += queried;
  prefix_hits_ += hit;
}

KvStats KvCacheManager::stats() const {
  KvStats s;
  s.num_blocks = pool_.num_blocks();
  s.free_blocks = pool_.num_free_blocks();
  s.cached_blocks = pool_.num_cached_blocks();
  s.usage = pool_.usage();
  s.prefix_queries_tokens = prefix_queries_;
  s.prefix_hits_tokens = prefix_hits_;
  s.evictions = pool_.num_evictions();
  return s;
}

void KvCacheManager::check_invariants(std::span<const BlockTable* const> tables) const {
  pool_.check_invariants();
  std::vector<int> holders(pool_.num_blocks(), 0);
  for (const BlockTable* t : tables) {
    if (t->num_committed > t->num_blocks())
      throw std::logic_error("BlockTable: num_committed > blocks");
    for (int32_t b : t->blocks) {
      if (b < 0 || b >= pool_.num_blocks())
        throw std::logic_error("BlockTable holds out-of-range block");
      ++holders[b];
    }
  }
  for (int32_t b = 0; b < pool_.num_blocks(); ++b) {
    if (holders[b] != pool_.ref_count(b))
      throw std::logic_error("block " + std::to_string(b) + " ref count " +
                             std::to_string(pool_.ref_count(b)) + " but held by " +
                             std::to_string(holders[b]) + " tables");
  }
}

}  // namespace herd
