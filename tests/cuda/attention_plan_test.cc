// The host-side arithmetic of paged attention, checked without a GPU: the varlen tile
// numbering covers every query of every sequence exactly once, KV split ranges partition each
// context, and the split heuristic stays within its limits.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "kernels/cuda/attention_tiles.h"
#include "kernels/cuda/cuda_ops.h"

namespace herd {
namespace {

using cuda::attention_rows_per_tile;
using cuda::attention_split_keys;
using cuda::attention_tile;
using cuda::attention_tile_count;

TEST(CudaAttentionPlan, TilesCoverEveryQueryExactlyOnce) {
  std::mt19937 rng(1);
  for (int trial = 0; trial < 400; ++trial) {
    const int group = std::vector<int>{1, 2, 3, 4, 8, 16, 32, 64}[size_t(trial % 8)];
    const int R = attention_rows_per_tile(group);
    ASSERT_GE(R, 1);
    ASSERT_LE(R * group, 64);  // the block's 64 (query, head) rows
    const int num_seqs = 1 + int(rng() % 40);
    std::vector<int32_t> qs = {0};
    for (int s = 0; s < num_seqs; ++s) {
      // Mostly decodes and empty sequences, sometimes long prefills.
      const uint32_t kind = rng() % 4;
      const int q = kind == 0 ? 0 : kind == 1 ? 1 : int(rng() % (kind == 2 ? 70 : 700));
      qs.push_back(qs.back() + q);
    }
    const int num_tokens = qs.back();
    SCOPED_TRACE(::testing::Message() << "trial " << trial << " group " << group << " tokens "
                                      << num_tokens << " seqs " << num_seqs);
    std::vector<int> seen(size_t(num_tokens), 0);
    const int tiles = attention_tile_count(num_tokens, num_seqs, R);
    for (int t = 0; t < tiles; ++t) {
      const auto w = attention_tile(qs.data(), num_seqs, R, t);
      ASSERT_GE(w.seq, 0);
      ASSERT_LT(w.seq, num_seqs);
      ASSERT_EQ(w.q_begin, qs[size_t(w.seq)]);
      ASSERT_EQ(w.q_len, qs[size_t(w.seq) + 1] - qs[size_t(w.seq)]);
      ASSERT_LE(w.rows, R);
      if (w.rows == 0) continue;
      ASSERT_GE(w.q0, 0);
      ASSERT_LE(w.q0 + w.rows, w.q_len);
      for (int r = 0; r < w.rows; ++r) ++seen[size_t(w.q_begin + w.q0 + r)];
    }
    for (int i = 0; i < num_tokens; ++i) ASSERT_EQ(seen[size_t(i)], 1) << "query row " << i;
  }
}

TEST(CudaAttentionPlan, SplitRangesPartitionTheContextInWholeSteps) {
  for (int ctx : {1, 63, 64, 65, 1000, 4097, 131072}) {
    for (int splits : {1, 2, 3, 7, 16, 32}) {
      SCOPED_TRACE(::testing::Message() << "ctx " << ctx << " splits " << splits);
      int next = 0;
      for (int s = 0; s < splits; ++s) {
        const auto r = attention_split_keys(ctx, splits, s, 64);
        ASSERT_EQ(r.begin, next);
        ASSERT_LE(r.begin, r.end);
        if (r.end < ctx) {
          ASSERT_EQ((r.end - r.begin) % 64, 0);
        }
        next = r.end;
      }
      EXPECT_EQ(next, ctx);
    }
  }
}

AttentionBatch batch_shape(int num_seqs, int num_tokens, int max_seq_len) {
  AttentionBatch b;
  b.num_seqs = num_seqs;
  b.num_tokens = num_tokens;
  b.max_seq_len = max_seq_len;
  return b;
}

TEST(CudaAttentionPlan, SplitsOnlyWhenTheGpuWouldIdleAndContextsAreLong) {
  const int sms = 132;
  // A large prefill fills the GPU by itself.
  EXPECT_EQ(cuda::attention_splits(batch_shape(1, 8192, 8192), 8, 4, sms), 1);
  // 256 decodes fill it too.
  EXPECT_EQ(cuda::attention_splits(batch_shape(256, 256, 4096), 8, 4, sms), 1);
  // Short contexts never split.
  EXPECT_EQ(cuda::attention_splits(batch_shape(1, 1, 200), 8, 4, sms), 1);
  // One long decode: split, at most 32 ways, each split at least 256 keys.
  for (int len : {4097, 20000, 131072}) {
    const int s = cuda::attention_splits(batch_shape(1, 1, len), 8, 4, sms);
    EXPECT_GT(s, 1) << len;
    EXPECT_LE(s, 32) << len;
    EXPECT_LE(s * 256, len) << len;
  }
}

TEST(CudaAttentionPlan, WorkspaceHoldsEverySplitsPartials) {
  const AttentionBatch b = batch_shape(2, 2, 20000);
  EXPECT_EQ(cuda::attention_workspace_bytes(b, 32, 128, 1), 0u);
  const size_t rows = size_t(8) * 2 * 32;  // splits x tokens x heads
  EXPECT_GE(cuda::attention_workspace_bytes(b, 32, 128, 8),
            rows * 128 * sizeof(float) + rows * 2 * sizeof(float));
}

}  // namespace
}  // namespace herd
