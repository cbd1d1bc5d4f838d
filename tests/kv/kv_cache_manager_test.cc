#include "engine/kv/kv_cache_manager.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace herd {
namespace {

std::vector<int32_t> iota_tokens(int n, int32_t first = 1) {
  std::vector<int32_t> t(n);
  std::iota(t.begin(), t.end(), first);
  return t;
}

KeyInputs in(const std::vector<int32_t>& t, std::string_view salt = "") {
  return KeyInputs{TokenSpan(t, {}), salt, {}};
}

void check(const KvCacheManager& m, std::vector<const BlockTable*> tables) {
  ASSERT_NO_THROW(m.check_invariants(tables));
}

// Runs a whole sequence of `tokens` through allocate + commit, as a scheduler would.
void compute(KvCacheManager& m, BlockTable& t, const std::vector<int32_t>& tokens) {
  const auto hits = m.find_cached_prefix(t, in(tokens));
  ASSERT_GE(m.allocate_slots(t, int(tokens.size()), hits), 0);
  m.commit_computed(t, in(tokens), int(tokens.size()));
}

TEST(KvCacheManager, AllocatesSlotsBlockByBlock) {
  KvCacheManager m(8, 4, true);
  BlockTable t;
  EXPECT_EQ(m.allocate_slots(t, 5), 2);
  EXPECT_EQ(t.num_blocks(), 2);
  EXPECT_EQ(m.allocate_slots(t, 8), 0);  // still fits
  EXPECT_EQ(m.allocate_slots(t, 9), 1);
  EXPECT_EQ(t.num_blocks(), 3);
  check(m, {&t});
}

TEST(KvCacheManager, SaysNoWithoutPartialAllocation) {
  KvCacheManager m(3, 4, true);
  BlockTable a, b;
  ASSERT_EQ(m.allocate_slots(a, 8), 2);
  EXPECT_EQ(m.allocate_slots(b, 8), -1);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(m.pool().num_free_blocks(), 1);
  check(m, {&a, &b});
}

TEST(KvCacheManager, PrefixHitNeverCoversTheWholeSequence) {
  KvCacheManager m(16, 4, true);
  const auto tokens = iota_tokens(8);  // exactly two full blocks
  BlockTable a;
  compute(m, a, tokens);
  m.free(a);
  BlockTable b;
  const auto hits = m.find_cached_prefix(b, in(tokens));
  ASSERT_EQ(hits.size(), 1u);  // the last token must be computed: block 2 is recomputed
  EXPECT_EQ(hits[0], a.keys.size() ? m.pool().lookup(a.keys[0]) : -1);

  auto longer = tokens;
  longer.push_back(99);
  BlockTable c;
  EXPECT_EQ(m.find_cached_prefix(c, in(longer)).size(), 2u);
}

TEST(KvCacheManager, HitsStopAtFirstMissAndRespectSalt) {
  KvCacheManager m(16, 4, true);
  auto tokens = iota_tokens(13);
  BlockTable a;
  compute(m, a, tokens);
  auto other = tokens;
  other[5] = 1000;  // differs in block 1
  BlockTable b;
  EXPECT_EQ(m.find_cached_prefix(b, in(other)).size(), 1u);
  BlockTable c;
  EXPECT_TRUE(m.find_cached_prefix(c, in(tokens, "tenant-b")).empty());
  BlockTable d;
  EXPECT_EQ(m.find_cached_prefix(d, in(tokens)).size(), 3u);
}

TEST(KvCacheManager, SharedHitsAreRefCountedAndCountAgainstFreeOnlyAtRefZero) {
  KvCacheManager m(6, 4, true);
  const auto tokens = iota_tokens(9);
  BlockTable a;
  compute(m, a, tokens);  // 3 blocks, 2 full ones keyed
  BlockTable b;
  const auto hits = m.find_cached_prefix(b, in(tokens));
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(m.blocks_taken_by(b, 9, hits), 1);  // hits owned by `a`: only the tail is new
  ASSERT_EQ(m.allocate_slots(b, 9, hits), 1);
  EXPECT_EQ(m.pool().ref_count(hits[0]), 2);
  check(m, {&a, &b});
  m.free(a);
  m.free(b);
  check(m, {&a, &b});
  EXPECT_EQ(m.pool().num_cached_blocks(), 2);
  BlockTable c;
  const auto hits2 = m.find_cached_prefix(c, in(tokens));
  EXPECT_EQ(m.blocks_taken_by(c, 9, hits2), 3);  // two revived cached blocks + one fresh
}

TEST(KvCacheManager, FreeCachesTailFirstForEviction) {
  KvCacheManager m(4, 2, true);
  const auto tokens = iota_tokens(7);  // blocks: 3 full + 1 partial
  BlockTable a;
  compute(m, a, tokens);
  const auto blocks = a.blocks;
  m.free(a);
  // Partial block goes back to the free stack; full ones cached tail-first.
  EXPECT_EQ(m.pool().cached_in_eviction_order(),
            (std::vector<int32_t>{blocks[2], blocks[1], blocks[0]}));
  // A new unrelated sequence needing 2 blocks takes the free one, then evicts the tail.
  BlockTable b;
  ASSERT_EQ(m.allocate_slots(b, 4), 2);
  EXPECT_EQ(m.stats().evictions, 1);
  BlockTable c;
  EXPECT_EQ(m.find_cached_prefix(c, in(tokens)).size(), 2u);  // blocks 0 and 1 survive
  check(m, {&a, &b, &c});
}

TEST(KvCacheManager, CommitKeysGeneratedTokensToo) {
  KvCacheManager m(8, 4, true);
  const std::vector<int32_t> prompt{1, 2, 3};
  std::vector<int32_t> output;
  BlockTable a;
  ASSERT_GE(m.allocate_slots(a, 3), 0);
  m.commit_computed(a, KeyInputs{TokenSpan(prompt, output), "", {}}, 3);
  EXPECT_EQ(a.num_committed, 0);
  output = {4, 5};  // two decode steps: token 4 computed, 5 just sampled
  ASSERT_GE(m.allocate_slots(a, 4), 0);
  m.commit_computed(a, KeyInputs{TokenSpan(prompt, output), "", {}}, 4);
  EXPECT_EQ(a.num_committed, 1);
  BlockTable b;
  const std::vector<int32_t> same{1, 2, 3, 4, 9};
  EXPECT_EQ(m.find_cached_prefix(b, in(same)).size(), 1u);
}

TEST(KvCacheManager, ForkSharesComputedBlocks) {
  KvCacheManager m(8, 4, false);  // works without the prefix cache
  const auto tokens = iota_tokens(10);
  BlockTable a;
  ASSERT_GE(m.allocate_slots(a, 10), 0);
  m.commit_computed(a, in(tokens), 10);
  BlockTable b;
  m.fork(b, a, 2);
  EXPECT_EQ(b.blocks, (std::vector<int32_t>{a.blocks[0], a.blocks[1]}));
  EXPECT_EQ(m.pool().ref_count(a.blocks[0]), 2);
  EXPECT_EQ(m.pool().ref_count(a.blocks[2]), 1);
  ASSERT_EQ(m.allocate_slots(b, 10), 1);  // private tail
  EXPECT_EQ(m.pool().num_owned_blocks(), 4);
  check(m, {&a, &b});
  BlockTable c;
  EXPECT_THROW(m.fork(c, a, 3), std::logic_error);  // block 2 not full
  m.free(a);
  m.free(b);
  EXPECT_EQ(m.pool().num_free_blocks(), 8);
  check(m, {&a, &b});
}

TEST(KvCacheManager, StatsCountQueriesAndHits) {
  KvCacheManager m(8, 4, true);
  m.record_prefix_query(10, 4);
  m.record_prefix_query(6, 0);
  const KvStats s = m.stats();
  EXPECT_EQ(s.prefix_queries_tokens, 16);
  EXPECT_EQ(s.prefix_hits_tokens, 4);
  EXPECT_EQ(s.num_blocks, 8);
}

TEST(KvCacheManager, InvariantCheckCatchesAMissingHolder) {
  KvCacheManager m(4, 4, true);
  BlockTable a;
  ASSERT_GE(m.allocate_slots(a, 4), 0);
  EXPECT_THROW(m.check_invariants({}), std::logic_error);  // block owned by no table
}

}  // namespace
}  // namespace herd

namespace herd {
namespace {

// Keys of a sequence's first `n` full blocks, computed as after a step.
std::vector<BlockKey> keys_after_compute(KvCacheManager& m, const std::vector<int32_t>& tokens,
                                         std::string_view salt = "") {
  BlockTable t;
  EXPECT_GE(m.allocate_slots(t, int(tokens.size())), 0);
  m.commit_computed(t, in(tokens, salt), int(tokens.size()));
  m.free(t);
  return t.keys;
}

TEST(KvCacheManagerSalt, UnpinnedServerSaltIsRandomPerManager) {
  // Without a pinned salt each manager draws its own from the CSPRNG: the same tokens get
  // different keys, so keys cannot be predicted (or precomputed) from outside the process.
  KvCacheManager a(8, 4, true), b(8, 4, true);
  const auto tokens = iota_tokens(8);
  const auto ka = keys_after_compute(a, tokens), kb = keys_after_compute(b, tokens);
  ASSERT_EQ(ka.size(), 2u);
  ASSERT_EQ(kb.size(), 2u);
  EXPECT_NE(ka[0], kb[0]);
  EXPECT_NE(ka[1], kb[1]);
  // Each manager is still consistent with itself: the prefix hits.
  BlockTable t;
  auto longer = tokens;
  longer.push_back(0);
  EXPECT_EQ(a.find_cached_prefix(t, in(longer)).size(), 2u);
}

TEST(KvCacheManagerSalt, PinnedServerSaltGivesReproducibleSha256Keys) {
  KvCacheManager a(8, 16, true, std::string("herd-test-salt")),
      b(8, 16, true, std::string("herd-test-salt"));
  std::vector<int32_t> tokens(32);
  for (int i = 0; i < 32; ++i) tokens[size_t(i)] = i;
  const auto ka = keys_after_compute(a, tokens, "tenant-a");
  EXPECT_EQ(ka, keys_after_compute(b, tokens, "tenant-a"));
  ASSERT_EQ(ka.size(), 2u);
  // SHA-256(SHA-256(SHA-256("herd-test-salt") | "tenant-a") | int32 16 | int32 0..15), from
  //   python3 -c 'import hashlib,struct;H=lambda b:hashlib.sha256(b).digest();
  //     root=H(H(b"herd-test-salt")+b"tenant-a");
  //     print(H(root+struct.pack("<i",16)+struct.pack("<16i",*range(16))).hex())'
  EXPECT_EQ(ka[0].hex(), "d8194c04467cd1ee8116c99767f88187b526ceef4a6d19a038090ba2799fdd61");
  KvCacheManager c(8, 16, true, std::string("other-salt"));
  EXPECT_NE(ka[0], keys_after_compute(c, tokens, "tenant-a")[0]);
}

TEST(KvCacheManagerSalt, RequestCacheSaltIsolatesTenants) {
  KvCacheManager m(16, 4, true);
  const auto tokens = iota_tokens(13);  // 3 full blocks can hit
  keys_after_compute(m, tokens, "tenant-a");
  BlockTable same, other, none;
  EXPECT_EQ(m.find_cached_prefix(same, in(tokens, "tenant-a")).size(), 3u);
  EXPECT_TRUE(m.find_cached_prefix(other, in(tokens, "tenant-b")).empty());
  EXPECT_TRUE(m.find_cached_prefix(none, in(tokens, "")).empty());
}

}  // namespace
}  // namespace herd
