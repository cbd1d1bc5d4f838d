// Causal paged attention with GQA over a varlen batch, flash-style: keys and values are read
// one KV block at a time through the block table, and each query keeps a running max, a
// running softmax denominator and an unnormalized fp32 output that are rescaled when the max
// grows (online softmax), so nothing of size seq_len is ever materialized.
//
// Work item = (sequence, kv head, chunk of query rows). All query heads of the GQA group and
// all rows of the chunk are processed against a KV block while it is hot in L1, so K/V are
// read from memory once per item. Items are handed out dynamically; the causal mask makes
// later rows costlier, so the costliest items are queued first.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/thread_pool.h"

// Highway's per-target re-inclusion needs exactly this include order.
// clang-format off
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/attention.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// clang-format on

HWY_BEFORE_NAMESPACE();
namespace herd::cpu::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

HWY_INLINE float Dot(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, int len) {
  const hn::ScalableTag<float> df;
  const int lanes = int(hn::Lanes(df));
  auto s0 = hn::Zero(df), s1 = hn::Zero(df);
  int i = 0;
  for (; i + 2 * lanes <= len; i += 2 * lanes) {
    s0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(df, a + i + lanes), hn::LoadU(df, b + i + lanes), s1);
  }
  for (; i + lanes <= len; i += lanes)
    s0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), s0);
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(s0, s1)));
  for (; i < len; ++i) sum += a[i] * b[i];
  return sum;
}

// acc = acc * corr + sum_t p[t] * v_rows[t], v_rows[t] = v + t * stride, over len elements.
HWY_INLINE void RescaleAccumulate(float* HWY_RESTRICT acc, float corr, const float* p, int count,
                                  const float* v, int64_t stride, int len) {
  const hn::ScalableTag<float> df;
  const int lanes = int(hn::Lanes(df));
  const auto vc = hn::Set(df, corr);
  int d = 0;
  for (; d + lanes <= len; d += lanes) {
    auto a = hn::Mul(hn::LoadU(df, acc + d), vc);
    for (int t = 0; t < count; ++t)
      a = hn::MulAdd(hn::Set(df, p[t]), hn::LoadU(df, v + t * stride + d), a);
    hn::StoreU(a, df, acc + d);
  }
  for (; d < len; ++d) {
    float a = acc[d] * corr;
    for (int t = 0; t < count; ++t) a += p[t] * v[t * stride + d];
    acc[d] = a;
  }
}

// One work item: sequence `seq`, kv head `kvh`, query rows [r0, r1) of that sequence.
void AttendItem(const float* q, const PagedKv& kv, const AttentionBatch& b, int num_heads,
                float scale, int seq, int kvh, int r0, int r1, float* out) {
  const int hd = kv.head_dim, bs = kv.block_size;
  const int group = num_heads / kv.num_kv_heads;
  const int64_t q_stride = int64_t(num_heads) * hd;
  const int64_t kv_stride = int64_t(kv.num_kv_heads) * hd;
  const int q_begin = b.query_start[seq];
  const int q_len = b.query_start[seq + 1] - q_begin;
  const int pos0 = b.seq_lens[seq] - q_len;  // position of the sequence's first new token
  const int32_t* table = b.block_tables + int64_t(seq) * b.max_blocks_per_seq;
  const int m_count = (r1 - r0) * group;

  thread_local std::vector<float> acc, run_max, run_sum, scores;
  acc.assign(size_t(m_count) * hd, 0.0f);
  run_max.assign(size_t(m_count), -INFINITY);
  run_sum.assign(size_t(m_count), 0.0f);
  scores.resize(size_t(bs));

  const int ctx_end = pos0 + r1;  // the last row sees tokens [0, ctx_end)
  for (int blk = 0; blk * bs < ctx_end; ++blk) {
    const int t0 = blk * bs, t1 = std::min(t0 + bs, ctx_end);
    const int64_t slot0 = int64_t(table[blk]) * bs;
    const float* kb = kv.k + slot0 * kv_stride + int64_t(kvh) * hd;
    const float* vb = kv.v + slot0 * kv_stride + int64_t(kvh) * hd;
    for (int r = r0; r < r1; ++r) {
      const int count = std::min(t1, pos0 + r + 1) - t0;  // causal: tokens <= own position
      if (count <= 0) continue;
      for (int g = 0; g < group; ++g) {
        const int qi = (r - r0) * group + g;
        const float* qv = q + (q_begin + r) * q_stride + int64_t(kvh * group + g) * hd;
        float block_max = -INFINITY;
        for (int t = 0; t < count; ++t) {
          scores[size_t(t)] = Dot(qv, kb + t * kv_stride, hd) * scale;
          block_max = std::max(block_max, scores[size_t(t)]);
        }
        const float new_max = std::max(run_max[size_t(qi)], block_max);
        const float corr = std::exp(run_max[size_t(qi)] - new_max);  // 0 on the first block
        float sum = 0.0f;
        for (int t = 0; t < count; ++t) {
          scores[size_t(t)] = std::exp(scores[size_t(t)] - new_max);
          sum += scores[size_t(t)];
        }
        run_sum[size_t(qi)] = run_sum[size_t(qi)] * corr + sum;
        run_max[size_t(qi)] = new_max;
        RescaleAccumulate(acc.data() + size_t(qi) * hd, corr, scores.data(), count, vb, kv_stride,
                          hd);
      }
    }
  }
  for (int r = r0; r < r1; ++r) {
    for (int g = 0; g < group; ++g) {
      const int qi = (r - r0) * group + g;
      const float inv = 1.0f / run_sum[size_t(qi)];
      float* o = out + (q_begin + r) * q_stride + int64_t(kvh * group + g) * hd;
      const float* a = acc.data() + size_t(qi) * hd;
      for (int d = 0; d < hd; ++d) o[d] = a[d] * inv;
    }
  }
}

}  // namespace herd::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace herd::cpu {

HWY_EXPORT(AttendItem);

void paged_attention(ThreadPool& pool, const float* q, const PagedKv& kv, const AttentionBatch& b,
                     int num_heads, float scale, float* out) {
  struct Item {
    int seq, kvh, r0, r1;
  };
  const int group = num_heads / kv.num_kv_heads;
  // About 32 query vectors per item: enough reuse of each K/V block, small enough to balance.
  const int rows_per_item = std::max(1, 32 / group);
  std::vector<Item> items;
  for (int s = 0; s < b.num_seqs; ++s) {
    const int q_len = b.query_start[s + 1] - b.query_start[s];
    for (int r1 = q_len; r1 > 0; r1 -= rows_per_item) {
      for (int h = 0; h < kv.num_kv_heads; ++h) {
        items.push_back({s, h, std::max(0, r1 - rows_per_item), r1});
      }
    }
  }
  // Costliest first (context length times rows) so the stragglers start early.
  std::stable_sort(items.begin(), items.end(), [&](const Item& x, const Item& y) {
    auto cost = [&](const Item& it) {
      const int q_len = b.query_start[it.seq + 1] - b.query_start[it.seq];
      return int64_t(b.seq_lens[it.seq] - q_len + it.r1) * (it.r1 - it.r0);
    };
    return cost(x) > cost(y);
  });
  auto* fn = HWY_DYNAMIC_DISPATCH(AttendItem);
  pool.parallel_for(int64_t(items.size()), [&](int64_t i, int) {
    const Item& it = items[size_t(i)];
    fn(q, kv, b, num_heads, scale, it.seq, it.kvh, it.r0, it.r1, out);
  });
}

}  // namespace herd::cpu
#endif
