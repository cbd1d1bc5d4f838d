#include "engine/kv/block_pool.h"

#include <gtest/gtest.h>

#include <vector>

#include "engine/common/error.h"

namespace herd {
namespace {

BlockKey key(uint64_t v) {
  BlockKey k;
  for (size_t i = 0; i < k.bytes.size(); ++i) k.bytes[i] = (unsigned char)(v >> (8 * (i % 8)));
  k.bytes[31] ^= 0xa5;
  return k;
}

TEST(BlockPool, RejectsBadSizes) {
  EXPECT_THROW(BlockPool(0, 16, true), InvalidArgument);
  EXPECT_THROW(BlockPool(4, 0, true), InvalidArgument);
}

TEST(BlockPool, AllocateIsAllOrNothing) {
  BlockPool pool(4, 16, true);
  std::vector<int32_t> got;
  ASSERT_TRUE(pool.allocate(3, &got));
  EXPECT_EQ(got, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(pool.num_free_blocks(), 1);
  EXPECT_DOUBLE_EQ(pool.usage(), 0.75);
  std::vector<int32_t> more;
  EXPECT_FALSE(pool.allocate(2, &more));
  EXPECT_TRUE(more.empty());
  EXPECT_EQ(pool.num_free_blocks(), 1);
  pool.check_invariants();
}

TEST(BlockPool, RefCountsAndRelease) {
  BlockPool pool(4, 16, true);
  std::vector<int32_t> got;
  ASSERT_TRUE(pool.allocate(2, &got));
  pool.acquire(got);
  EXPECT_EQ(pool.ref_count(got[0]), 2);
  pool.release(got);
  EXPECT_EQ(pool.ref_count(got[0]), 1);
  EXPECT_EQ(pool.num_owned_blocks(), 2);
  pool.release(got);
  EXPECT_EQ(pool.num_owned_blocks(), 0);
  EXPECT_EQ(pool.num_cached_blocks(), 0);  // no keys: plain free
  EXPECT_THROW(pool.release(got), std::logic_error);
  pool.check_invariants();
}

TEST(BlockPool, KeyedBlocksStayCachedAndCanBeRevived) {
  BlockPool pool(4, 16, true);
  std::vector<int32_t> got;
  ASSERT_TRUE(pool.allocate(1, &got));
  pool.cache_full_block(got[0], key(7));
  EXPECT_EQ(pool.lookup(key(7)), got[0]);
  pool.release(got);
  EXPECT_EQ(pool.num_cached_blocks(), 1);
  EXPECT_EQ(pool.num_free_blocks(), 4);  // cached blocks are allocatable
  EXPECT_EQ(pool.lookup(key(7)), got[0]);
  pool.acquire(got);  // a hit on a ref-0 block
  EXPECT_EQ(pool.ref_count(got[0]), 1);
  EXPECT_EQ(pool.num_cached_blocks(), 0);
  pool.check_invariants();
}

TEST(BlockPool, FreeBlocksGoBeforeCachedOnesAndEvictionIsLru) {
  BlockPool pool(4, 16, true);
  std::vector<int32_t> b;
  ASSERT_TRUE(pool.allocate(3, &b));
  for (int i = 0; i < 3; ++i) pool.cache_full_block(b[i], key(100 + i));
  // Released in order 2, 0, 1: evicted in that order.
  pool.release(std::vector<int32_t>{b[2], b[0], b[1]});
  EXPECT_EQ(pool.cached_in_eviction_order(), (std::vector<int32_t>{b[2], b[0], b[1]}));

  std::vector<int32_t> fresh;
  ASSERT_TRUE(pool.allocate(1, &fresh));
  EXPECT_EQ(fresh[0], 3);  // the never-used block, no eviction
  EXPECT_EQ(pool.num_evictions(), 0);
  ASSERT_TRUE(pool.allocate(2, &fresh));
  EXPECT_EQ(fresh[1], b[2]);
  EXPECT_EQ(fresh[2], b[0]);
  EXPECT_EQ(pool.num_evictions(), 2);
  EXPECT_EQ(pool.lookup(key(102)), -1);
  EXPECT_EQ(pool.lookup(key(100)), -1);
  EXPECT_EQ(pool.lookup(key(101)), b[1]);
  EXPECT_FALSE(pool.has_key(b[2]));
  pool.check_invariants();
}

TEST(BlockPool, ReviveRemovesFromMiddleOfLru) {
  BlockPool pool(3, 4, true);
  std::vector<int32_t> b;
  ASSERT_TRUE(pool.allocate(3, &b));
  for (int i = 0; i < 3; ++i) pool.cache_full_block(b[i], key(i + 1));
  pool.release(b);
  pool.acquire(std::vector<int32_t>{b[1]});
  EXPECT_EQ(pool.cached_in_eviction_order(), (std::vector<int32_t>{b[0], b[2]}));
  pool.release(std::vector<int32_t>{b[1]});  // back at the tail: most recently used
  EXPECT_EQ(pool.cached_in_eviction_order(), (std::vector<int32_t>{b[0], b[2], b[1]}));
  pool.check_invariants();
}

TEST(BlockPool, DuplicateKeyKeepsFirstBlock) {
  BlockPool pool(2, 4, true);
  std::vector<int32_t> b;
  ASSERT_TRUE(pool.allocate(2, &b));
  pool.cache_full_block(b[0], key(5));
  pool.cache_full_block(b[1], key(5));
  EXPECT_EQ(pool.lookup(key(5)), b[0]);
  EXPECT_FALSE(pool.has_key(b[1]));
  pool.release(b);
  EXPECT_EQ(pool.num_cached_blocks(), 1);
  pool.check_invariants();
}

TEST(BlockPool, CachingOffNeverKeys) {
  BlockPool pool(2, 4, false);
  std::vector<int32_t> b;
  ASSERT_TRUE(pool.allocate(1, &b));
  pool.cache_full_block(b[0], key(9));
  EXPECT_EQ(pool.lookup(key(9)), -1);
  pool.release(b);
  EXPECT_EQ(pool.num_cached_blocks(), 0);
  pool.check_invariants();
}

TEST(BlockPool, AcquireOfFreeBlockIsABug) {
  BlockPool pool(2, 4, true);
  EXPECT_THROW(pool.acquire(std::vector<int32_t>{0}), std::logic_error);
}

}  // namespace
}  // namespace herd
