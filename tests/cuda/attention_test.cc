// kv_write and paged_attention of the CUDA backend against the CPU backend: GQA ratios 1/4/8,
// head sizes 64/128, contexts ending at block edges, block sizes 16/32/1, shuffled block
// tables, decode / prefill / chunked prefill / mixed batches, an empty sequence, long contexts
// (split-K path) up to 131072 tokens, and a sharply peaked softmax. Unused cache slots hold
// random values, so reading past a context or ignoring the causal mask shows up.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "tests/cuda/cuda_test_util.h"

namespace herd {
namespace {

using test::view;
using test::random_floats;
using test::round_bf16;

struct Scenario {
  int num_heads, num_kv_heads, head_dim, block_size;
  std::vector<int> seq_lens, q_lens;
  std::vector<float> kc, vc, q;  // already BF16-rounded
  std::vector<int32_t> query_start, seq_lens32, tables;
  int max_blocks = 0, num_tokens = 0;
  int64_t slots = 0;

  Scenario(int heads, int kv_heads, int hd, int bs, std::vector<int> lens, std::vector<int> qs,
           uint32_t seed, float q_scale = 1.0f)
      : num_heads(heads),
        num_kv_heads(kv_heads),
        head_dim(hd),
        block_size(bs),
        seq_lens(std::move(lens)),
        q_lens(std::move(qs)) {
    int total_blocks = 2;  // spare blocks nobody owns
    for (int len : seq_lens) {
      max_blocks = std::max(max_blocks, (len + bs - 1) / bs);
      total_blocks += (len + bs - 1) / bs;
    }
    std::vector<int32_t> physical(static_cast<size_t>(total_blocks));
    std::iota(physical.begin(), physical.end(), 0);
    std::shuffle(physical.begin(), physical.end(), std::mt19937(seed));
    tables.assign(seq_lens.size() * size_t(std::max(1, max_blocks)), -1);
    max_blocks = std::max(1, max_blocks);
    size_t next = 0;
    query_start = {0};
    for (size_t s = 0; s < seq_lens.size(); ++s) {
      for (int j = 0; j < (seq_lens[s] + bs - 1) / bs; ++j)
        tables[s * size_t(max_blocks) + size_t(j)] = physical[next++];
      query_start.push_back(query_start.back() + q_lens[s]);
      seq_lens32.push_back(seq_lens[s]);
    }
    num_tokens = query_start.back();
    slots = int64_t(total_blocks) * bs;
    const size_t cache = size_t(slots) * size_t(kv_heads * hd);
    kc = round_bf16(random_floats(cache, seed + 1));
    vc = round_bf16(random_floats(cache, seed + 2));
    q = random_floats(size_t(num_tokens) * size_t(heads * hd), seed + 3);
    for (auto& v : q) v *= q_scale;
    q = round_bf16(q);
  }
  AttentionBatch batch(const int32_t* qs, const int32_t* sl, const int32_t* bt) const {
    return AttentionBatch{int(seq_lens.size()),
                          num_tokens,
                          max_blocks,
                          *std::max_element(seq_lens.begin(), seq_lens.end()),
                          qs,
                          sl,
                          bt};
  }
  float scale() const { return 1.0f / std::sqrt(float(head_dim)); }
};

class CudaAttention : public test::CudaBackendTest {
 protected:
  std::vector<float> run_cpu(Scenario& sc) {
    std::vector<float> out(sc.q.size());
    const int64_t width = int64_t(sc.num_kv_heads) * sc.head_dim;
    KvLayer layer{view(sc.kc, sc.slots, width), view(sc.vc, sc.slots, width),
                  sc.block_size, sc.num_kv_heads, sc.head_dim};
    Tensor qt = view(sc.q, sc.num_tokens, int64_t(sc.num_heads) * sc.head_dim);
    Tensor ot = view(out, sc.num_tokens, int64_t(sc.num_heads) * sc.head_dim);
    cpu->paged_attention(qt, layer,
                         sc.batch(sc.query_start.data(), sc.seq_lens32.data(), sc.tables.data()),
                         sc.num_heads, sc.scale(), ot);
    return out;
  }
  std::vector<float> run_gpu(const Scenario& sc) {
    const int64_t width = int64_t(sc.num_kv_heads) * sc.head_dim;
    const int64_t qw = int64_t(sc.num_heads) * sc.head_dim;
    KvLayer layer{device(sc.kc, sc.slots, width), device(sc.vc, sc.slots, width), sc.block_size,
                  sc.num_kv_heads, sc.head_dim};
    Tensor qt = device(sc.q, sc.num_tokens, qw), ot = poisoned(sc.num_tokens, qw);
    const AttentionBatch b =
        sc.batch(device_ints(sc.query_start), device_ints(sc.seq_lens32), device_ints(sc.tables));
    gpu->paged_attention(qt, layer, b, sc.num_heads, sc.scale(), ot);
    return fetch(ot);
  }
  void expect_match(Scenario& sc) {
    test::expect_nmse_below(run_gpu(sc), run_cpu(sc), test::kAttentionBound);
  }
};

struct Config {
  int group, head_dim;
};

class CudaAttentionGqa : public CudaAttention, public ::testing::WithParamInterface<Config> {};

TEST_P(CudaAttentionGqa, DecodeAcrossBlockBoundaries) {
  const auto [group, hd] = GetParam();
  // One new token per sequence; contexts end just before, at and after block edges.
  Scenario sc(2 * group, 2, hd, 16, {1, 15, 16, 17, 32, 33, 63, 64, 65, 200},
              {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 10);
  expect_match(sc);
}

TEST_P(CudaAttentionGqa, PrefillChunkedPrefillAndMixedBatch) {
  const auto [group, hd] = GetParam();
  // A full prefill longer than a query tile, a chunk on top of cached context, decodes, an
  // empty sequence (q_len 0), odd lengths; block size 32.
  Scenario sc(group * 2, 2, hd, 32, {137, 300, 9, 64, 40, 1}, {137, 45, 1, 64, 0, 1}, 20);
  expect_match(sc);
}

TEST_P(CudaAttentionGqa, LongContextDecodeTakesTheSplitPath) {
  const auto [group, hd] = GetParam();
  // Two sequences leave most of the GPU idle without split-K; the kernel splits the keys.
  Scenario sc(group, 1, hd, 16, {20000, 4097}, {1, 1}, 30);
  expect_match(sc);
}

INSTANTIATE_TEST_SUITE_P(GqaAndHeadDim, CudaAttentionGqa,
                         ::testing::Values(Config{1, 64}, Config{1, 128}, Config{4, 64},
                                           Config{4, 128}, Config{8, 64}, Config{8, 128}),
                         [](const auto& info) {
                           return "group" + std::to_string(info.param.group) + "_hd" +
                                  std::to_string(info.param.head_dim);
                         });

TEST_F(CudaAttention, BlockSizeOneAndLargeBatch) {
  std::vector<int> lens, qs;
  for (int i = 0; i < 70; ++i) {
    lens.push_back(1 + (i * 37) % 150);
    qs.push_back(i % 3 == 0 ? std::min(lens.back(), 5) : 1);
  }
  Scenario sc(8, 2, 128, 1, lens, qs, 40);
  expect_match(sc);
}

TEST_F(CudaAttention, SharplyPeakedScores) {
  // Large q: softmax nearly one-hot, so the running max moves and the rescaling must be right.
  Scenario sc(32, 8, 128, 16, {3000, 700, 129}, {1, 70, 129}, 50, 6.0f);
  expect_match(sc);
}

TEST_F(CudaAttention, DecodeAtPosition131071) {
  // Llama 3's longest context: one query at position 131071 over 131072 cached tokens.
  Scenario sc(8, 1, 64, 16, {131072}, {1}, 60);
  expect_match(sc);
}

// kv_write on both backends: the same rows land in the same slots, padding (slot -1) writes
// nothing, every other slot keeps its old contents.
TEST_F(CudaAttention, KvWriteMatchesCpu) {
  for (int hd : {64, 128}) {
    SCOPED_TRACE(::testing::Message() << "head_dim " << hd);
    const int kv_heads = 2, slots = 64;
    const int64_t width = int64_t(kv_heads) * hd;
    const std::vector<int32_t> slot_of = {5, 63, -1, 0, 16, 17, -1, 40};
    const int64_t n = int64_t(slot_of.size());
    auto k = round_bf16(random_floats(size_t(n * width), 70));
    auto v = round_bf16(random_floats(size_t(n * width), 71));
    auto kc = round_bf16(random_floats(size_t(slots * width), 72));
    auto vc = round_bf16(random_floats(size_t(slots * width), 73));

    KvLayer dl{device(kc, slots, width), device(vc, slots, width), 16, kv_heads, hd};
    gpu->kv_write(device(k, n, width), device(v, n, width), device_ints(slot_of), dl);
    KvLayer cl{view(kc, slots, width), view(vc, slots, width), 16, kv_heads, hd};
    Tensor ck = view(k, n, width), cv = view(v, n, width);
    cpu->kv_write(ck, cv, slot_of.data(), cl);
    EXPECT_EQ(fetch(dl.k), kc);
    EXPECT_EQ(fetch(dl.v), vc);
  }
}

// Prefill in chunks through kv_write + paged_attention (as the engine does) agrees with the
// CPU doing the same.
TEST_F(CudaAttention, ChunkedPrefillThroughKvWrite) {
  const int heads = 32, kv_heads = 8, hd = 128, bs = 16, len = 150;
  const int64_t width = int64_t(kv_heads) * hd, qw = int64_t(heads) * hd;
  const auto k_all = round_bf16(random_floats(size_t(len * width), 80));
  const auto v_all = round_bf16(random_floats(size_t(len * width), 81));
  const auto q_all = round_bf16(random_floats(size_t(len * qw), 82));
  const std::vector<int32_t> table = {9, 0, 2, 1, 3, 8, 4, 7, 6, 5};  // 10 blocks of 16
  const int64_t slots = 10 * bs;
  std::vector<float> kc(size_t(slots * width), 0.0f), vc = kc;
  KvLayer dl{device(kc, slots, width), device(vc, slots, width), bs, kv_heads, hd};
  KvLayer cl{view(kc, slots, width), view(vc, slots, width), bs, kv_heads, hd};
  const int32_t* d_table = device_ints(table);

  int begin = 0;
  for (int end : {1, 40, 41, 128, 150}) {
    SCOPED_TRACE(::testing::Message() << "chunk [" << begin << ", " << end << ")");
    const int64_t n = end - begin;
    std::vector<float> k(k_all.begin() + begin * width, k_all.begin() + end * width);
    std::vector<float> v(v_all.begin() + begin * width, v_all.begin() + end * width);
    std::vector<float> q(q_all.begin() + begin * qw, q_all.begin() + end * qw);
    std::vector<int32_t> slot_of;
    for (int t = begin; t < end; ++t) slot_of.push_back(table[size_t(t / bs)] * bs + t % bs);
    const std::vector<int32_t> qs = {0, int32_t(n)}, sl = {end};

    gpu->kv_write(device(k, n, width), device(v, n, width), device_ints(slot_of), dl);
    Tensor dq = device(q, n, qw), dout = poisoned(n, qw);
    gpu->paged_attention(
        dq, dl, AttentionBatch{1, int(n), 10, end, device_ints(qs), device_ints(sl), d_table},
        heads, 1.0f / std::sqrt(float(hd)), dout);

    Tensor ck = view(k, n, width), cv = view(v, n, width);
    cpu->kv_write(ck, cv, slot_of.data(), cl);
    std::vector<float> want(q.size());
    Tensor cq = view(q, n, qw), cout_ = view(want, n, qw);
    cpu->paged_attention(cq, cl,
                         AttentionBatch{1, int(n), 10, end, qs.data(), sl.data(), table.data()},
                         heads, 1.0f / std::sqrt(float(hd)), cout_);
    test::expect_nmse_below(fetch(dout), want, test::kAttentionBound);
    begin = end;
  }
}

TEST_F(CudaAttention, RejectsUnsupportedShapes) {
  Scenario sc(4, 2, 64, 16, {20}, {4}, 90);
  const int64_t width = 2 * 64;
  KvLayer layer{device(sc.kc, sc.slots, width), device(sc.vc, sc.slots, width), 16, 2, 64};
  Tensor q = device(sc.q, sc.num_tokens, 4 * 64), out = poisoned(sc.num_tokens, 4 * 64);
  const AttentionBatch b =
      sc.batch(device_ints(sc.query_start), device_ints(sc.seq_lens32), device_ints(sc.tables));
  EXPECT_NO_THROW(gpu->paged_attention(q, layer, b, 4, 0.125f, out));
  EXPECT_THROW(gpu->paged_attention(q, layer, b, 3, 0.125f, out), Error);  // 3 % 2 != 0
  KvLayer odd = layer;
  odd.head_dim = 32;  // not compiled in
  odd.num_kv_heads = 4;
  Tensor q32 = q;
  EXPECT_THROW(gpu->paged_attention(q32, odd, b, 8, 0.125f, out), Error);
}

}  // namespace
}  // namespace herd
