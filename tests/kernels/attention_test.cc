// paged_attention: SIMD flash-style kernel vs the two-pass scalar reference over GQA ratios,
// head sizes, block boundaries, scattered block tables, decode / prefill / mixed batches and
// long contexts; chunked prefill (context already cached) must equal prefill all at once.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "engine/common/error.h"
#include "kernels/backend.h"
#include "kernels/cpu/reference_ops.h"
#include "tests/kernels/kernel_test_util.h"

namespace herd {
namespace {

using test::random_floats;
using test::view;

// A paged cache filled with random K/V (unused slots too, so reading past a sequence's end or
// ignoring the causal mask shows up) and a batch whose block tables are shuffled.
struct Scenario {
  int num_heads, num_kv_heads, head_dim, block_size;
  std::vector<int> seq_lens, q_lens;
  std::vector<float> kc, vc, q;
  std::vector<int32_t> query_start, seq_lens32, tables;
  int max_blocks = 0, num_tokens = 0;

  Scenario(int heads, int kv_heads, int hd, int bs, std::vector<int> lens, std::vector<int> qs,
           uint32_t seed)
      : num_heads(heads),
        num_kv_heads(kv_heads),
        head_dim(hd),
        block_size(bs),
        seq_lens(std::move(lens)),
        q_lens(std::move(qs)) {
    int total_blocks = 2;  // a couple of spare blocks nobody owns
    for (int len : seq_lens) {
      max_blocks = std::max(max_blocks, (len + bs - 1) / bs);
      total_blocks += (len + bs - 1) / bs;
    }
    std::vector<int32_t> physical(static_cast<size_t>(total_blocks));
    std::iota(physical.begin(), physical.end(), 0);
    std::shuffle(physical.begin(), physical.end(), std::mt19937(seed));
    tables.assign(seq_lens.size() * size_t(max_blocks), -1);
    size_t next = 0;
    query_start = {0};
    for (size_t s = 0; s < seq_lens.size(); ++s) {
      for (int j = 0; j < (seq_lens[s] + bs - 1) / bs; ++j) {
        tables[s * size_t(max_blocks) + size_t(j)] = physical[next++];
      }
      query_start.push_back(query_start.back() + q_lens[s]);
      seq_lens32.push_back(seq_lens[s]);
    }
    num_tokens = query_start.back();
    const size_t cache = size_t(total_blocks) * bs * kv_heads * hd;
    kc = random_floats(cache, seed + 1);
    vc = random_floats(cache, seed + 2);
    q = random_floats(size_t(num_tokens) * heads * hd, seed + 3);
  }

  KvLayer layer() {
    const int64_t slots = int64_t(kc.size()) / (num_kv_heads * head_dim);
    return KvLayer{view(kc, slots, num_kv_heads * head_dim),
                   view(vc, slots, num_kv_heads * head_dim), block_size, num_kv_heads, head_dim};
  }
  AttentionBatch batch() const {
    return AttentionBatch{int(seq_lens.size()), num_tokens,
                          max_blocks,           *std::max_element(seq_lens.begin(), seq_lens.end()),
                          query_start.data(),   seq_lens32.data(),
                          tables.data()};
  }
  float scale() const { return 1.0f / std::sqrt(float(head_dim)); }

  std::vector<float> run(Backend& be) {
    std::vector<float> out(q.size(), 0.0f);
    Tensor qt = view(q, num_tokens, num_heads * head_dim);
    Tensor ot = view(out, num_tokens, num_heads * head_dim);
    be.paged_attention(qt, layer(), batch(), num_heads, scale(), ot);
    return out;
  }
  std::vector<float> reference() {
    std::vector<float> out(q.size(), 0.0f);
    const cpu::PagedKv kv{kc.data(), vc.data(), block_size, num_kv_heads, head_dim};
    cpu::ref::paged_attention(q.data(), kv, batch(), num_heads, scale(), out.data());
    return out;
  }
};

struct Config {
  int group, head_dim;
};

class AttentionTest : public ::testing::TestWithParam<Config> {};

TEST_P(AttentionTest, DecodeAcrossBlockBoundaries) {
  const auto [group, hd] = GetParam();
  auto be = make_cpu_backend(2);
  // One new token per sequence; contexts end just before, at and after block edges.
  Scenario sc(2 * group, 2, hd, 16, {1, 15, 16, 17, 32, 33, 200}, {1, 1, 1, 1, 1, 1, 1}, 10);
  const auto want = sc.reference();
  test::for_each_simd_target([&] { EXPECT_LT(test::max_abs_diff(sc.run(*be), want), 2e-6); });
}

TEST_P(AttentionTest, PrefillAndMixedBatch) {
  const auto [group, hd] = GetParam();
  auto be = make_cpu_backend(2);
  // Full prefill, a chunk on top of cached context, decodes; block size 8 and odd lengths.
  Scenario sc(group, 1, hd, 8, {37, 100, 9, 64}, {37, 21, 1, 64}, 20);
  const auto want = sc.reference();
  test::for_each_simd_target([&] { EXPECT_LT(test::max_abs_diff(sc.run(*be), want), 2e-6); });
}

INSTANTIATE_TEST_SUITE_P(GqaAndHeadDim, AttentionTest,
                         ::testing::Values(Config{1, 64}, Config{4, 128}, Config{8, 64},
                                           Config{8, 16}, Config{1, 128}, Config{4, 16}),
                         [](const auto& info) {
                           return "group" + std::to_string(info.param.group) + "_hd" +
                                  std::to_string(info.param.head_dim);
                         });

TEST(Attention, LongContextDecodeWithSharpScores) {
  auto be = make_cpu_backend(2);
  Scenario sc(32, 8, 64, 16, {20000, 4097}, {1, 1}, 30);
  for (auto& v : sc.q) v *= 6.0f;  // peaked softmax: exercises the running-max rescaling
  EXPECT_LT(test::max_abs_diff(sc.run(*be), sc.reference()), 5e-6);
}

TEST(Attention, OneAndTwoThreadsGiveIdenticalResults) {
  auto one = make_cpu_backend(1), two = make_cpu_backend(2);
  Scenario sc(8, 2, 64, 16, {300, 45, 1}, {100, 45, 1}, 40);
  EXPECT_EQ(sc.run(*one), sc.run(*two));
}

// Prefill in chunks, writing each chunk's K/V with kv_write before attending (as the engine
// does), gives exactly the rows of a single full prefill.
TEST(Attention, ChunkedPrefillEqualsPrefillAllAtOnce) {
  auto be = make_cpu_backend(2);
  const int heads = 8, kv_heads = 2, hd = 64, bs = 16, len = 75, width = kv_heads * hd;
  const auto k_all = random_floats(size_t(len * width), 1);
  const auto v_all = random_floats(size_t(len * width), 2);
  auto q_all = random_floats(size_t(len * heads * hd), 3);
  const std::vector<int32_t> table = {4, 0, 2, 1, 3};  // 5 blocks of 16 hold 75 tokens
  const int slots_total = 5 * bs;

  // Attends rows [begin, end) of the prompt with tokens [0, end) cached; returns their output.
  auto attend = [&](std::vector<float>& kc, std::vector<float>& vc, int begin, int end) {
    std::vector<float> k(k_all.begin() + begin * width, k_all.begin() + end * width);
    std::vector<float> v(v_all.begin() + begin * width, v_all.begin() + end * width);
    std::vector<int32_t> slots;
    for (int t = begin; t < end; ++t) slots.push_back(table[size_t(t / bs)] * bs + t % bs);
    KvLayer layer{view(kc, slots_total, width), view(vc, slots_total, width), bs, kv_heads, hd};
    Tensor kt = view(k, end - begin, width), vt = view(v, end - begin, width);
    be->kv_write(kt, vt, slots.data(), layer);
    std::vector<float> q(q_all.begin() + begin * heads * hd, q_all.begin() + end * heads * hd);
    std::vector<float> out(q.size());
    const int32_t qs[2] = {0, end - begin}, sl[1] = {end};
    const AttentionBatch b{1, end - begin, 5, end, qs, sl, table.data()};
    Tensor qt = view(q, end - begin, heads * hd), ot = view(out, end - begin, heads * hd);
    be->paged_attention(qt, layer, b, heads, 0.125f, ot);
    return out;
  };

  std::vector<float> kc(size_t(slots_total * width)), vc = kc;
  const auto full = attend(kc, vc, 0, len);
  for (int split : {1, 16, 33, 74}) {
    SCOPED_TRACE(::testing::Message() << "split at " << split);
    std::vector<float> kc2(kc.size(), 0.0f), vc2 = kc2;
    auto chunked = attend(kc2, vc2, 0, split);
    const auto rest = attend(kc2, vc2, split, len);
    chunked.insert(chunked.end(), rest.begin(), rest.end());
    EXPECT_EQ(chunked, full);
  }
}

TEST(Attention, RejectsBadBatches) {
  auto be = make_cpu_backend(1);
  Scenario sc(4, 2, 16, 16, {20}, {4}, 50);
  std::vector<float> out(sc.q.size());
  Tensor qt = view(sc.q, sc.num_tokens, 4 * 16), ot = view(out, sc.num_tokens, 4 * 16);
  EXPECT_NO_THROW(be->paged_attention(qt, sc.layer(), sc.batch(), 4, 0.25f, ot));
  EXPECT_THROW(be->paged_attention(qt, sc.layer(), sc.batch(), 3, 0.25f, ot), Error);
  sc.tables[1] = 999;  // physical block outside the cache
  EXPECT_THROW(be->paged_attention(qt, sc.layer(), sc.batch(), 4, 0.25f, ot), Error);
}

}  // namespace
}  // namespace herd
