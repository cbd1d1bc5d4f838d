// Tensor- and pipeline-parallel forward in one process: every rank of a TP x PP job is a
// thread with its own CPU backend, KV cache and LlamaModel, talking through a thread
// communicator (the same interface the MPI one implements). Stage s sends its hidden states
// to the same TP rank of stage s + 1. The last stage's logits must match the single-process
// model over a multi-step varlen batch (chunked prefill next to decodes, paged KV in
// scattered physical blocks).
//
// Bound: activations are fp32; TP changes only the order of fp32 sums (partial dot products
// per shard, then the all-reduce; a stage's first norm without the fused add), so logits may
// differ by rounding only. Measured max |Δ| <= 2.8e-7 of the logit scale (max |logit|, about
// 5 here) over every TP x PP combination; the test allows 1e-4 of it (recorded as the
// property max_abs_diff_over_scale) and requires the greedy argmax of every row to be
// identical.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <random>
#include <thread>

#include "engine/common/error.h"
#include "engine/model/llama.h"
#include "engine/model/make_model.h"
#include "engine/model/weights.h"
#include "engine/parallel/thread_communicator.h"
#include "tests/model/checkpoint_test_util.h"
#include "tests/model/random_weights.h"

namespace herd {
namespace {

// heads, KV heads and the intermediate size divide by 4; 4 layers split into up to 4
// stages; a vocabulary that 2 and 4 do not divide (the last lm_head shard is padded).
ModelConfig config() {
  ModelConfig c;
  c.vocab_size = 101;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 4;
  c.head_dim = 8;
  c.max_position_embeddings = 4096;
  c.rope_theta = 500000.0;
  c.rope_scaling = {true, 8.0, 1.0, 4.0, 64};
  c.torch_dtype = DType::kF32;
  return c;
}

std::shared_ptr<LlamaWeights> random_weights(const ModelConfig& c, uint32_t seed, bool tied) {
  return testing::random_llama_weights(c, seed, tied);
}

constexpr int kBlock = 4;
constexpr int kMaxBlocks = 8;

struct Seq {
  std::vector<int32_t> ids;
  std::vector<int32_t> table;  // physical blocks
};

// Step k runs, for each sequence, tokens [begin, end) given by `chunks[k][seq]`.
StepInput make_step(const std::vector<Seq>& seqs, const std::vector<std::pair<int, int>>& ch) {
  StepInput in;
  in.max_blocks_per_seq = kMaxBlocks;
  in.query_start.push_back(0);
  for (size_t s = 0; s < seqs.size(); ++s) {
    const auto [b, e] = ch[s];
    for (int p = b; p < e; ++p) {
      in.token_ids.push_back(seqs[s].ids[size_t(p)]);
      in.positions.push_back(p);
      in.slot_mapping.push_back(seqs[s].table[size_t(p / kBlock)] * kBlock + p % kBlock);
    }
    in.query_start.push_back(int32_t(in.token_ids.size()));
    in.seq_lens.push_back(e);
    std::vector<int32_t> row(kMaxBlocks, -1);
    std::copy(seqs[s].table.begin(), seqs[s].table.end(), row.begin());
    in.block_tables.insert(in.block_tables.end(), row.begin(), row.end());
    in.logits_rows.push_back(in.query_start.back() - 1);
  }
  return in;
}

// Prefill chunks of 7 and 4 tokens next to each other, then a chunk next to a decode, then
// decodes of both.
std::vector<StepInput> schedule() {
  static const std::vector<Seq> seqs = {
      {{3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26, 43, 83}, {9, 2, 17, 5}},
      {{50, 51, 100, 7, 0, 99, 12, 1, 44}, {11, 0, 30}}};
  std::vector<std::vector<std::pair<int, int>>> plan = {{{0, 7}, {0, 4}},
                                                        {{7, 11}, {4, 5}},
                                                        {{11, 12}, {5, 6}},
                                                        {{12, 13}, {6, 7}},
                                                        {{13, 14}, {7, 8}}};
  std::vector<StepInput> steps;
  for (const auto& p : plan) steps.push_back(make_step(seqs, p));
  return steps;
}

std::vector<std::vector<float>> run_single(const ModelConfig& c,
                                           std::shared_ptr<const LlamaWeights> w) {
  auto be = make_cpu_backend(1);
  LlamaModel model(c, std::move(w), *be, 64, 8);
  KvCache kv(*be, c, 32, kBlock);
  std::vector<std::vector<float>> out;
  for (const StepInput& in : schedule()) {
    out.emplace_back(in.logits_rows.size() * size_t(c.head_rows()));
    model.forward(in, kv, out.back().data());
  }
  return out;
}

// Returns the logits of every step from each last-stage TP rank: [tp_rank][step].
// Each rank's weights: the whole model (sharded by LlamaModel) or the rank's part.
using WeightsFor = std::function<std::shared_ptr<const LlamaWeights>(const RankLayout&)>;

std::vector<std::vector<std::vector<float>>> run_parallel(const ModelConfig& c,
                                                          const WeightsFor& weights_for, int tp,
                                                          int pp) {
  ParallelConfig pc;
  pc.tensor_parallel_size = tp;
  pc.pipeline_parallel_size = pp;
  const int world = tp * pp;
  auto comms = make_thread_group(world, 20000);
  std::vector<std::vector<std::vector<float>>> logits(static_cast<size_t>(tp));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        Communicator& wc = *comms[size_t(rank)];
        const RankLayout l =
            make_rank_layout(pc, int(c.num_hidden_layers), int(c.num_attention_heads),
                             int(c.num_key_value_heads), world, rank);
        auto tp_comm = wc.split(l.pp_rank, l.tp_rank);
        auto be = make_cpu_backend(1);
        LlamaModel model(c, weights_for(l), *be, 64, 8, l, tp > 1 ? tp_comm.get() : nullptr);
        KvCache kv(*be, c, 32, kBlock, l);
        EXPECT_EQ(kv.num_layers(), size_t(l.layer_end - l.layer_begin));
        for (const StepInput& in : schedule()) {
          const int64_t T = int64_t(in.token_ids.size());
          Tensor h = model.hidden_states(T);
          if (!l.first_stage()) wc.recv(h.data, h.bytes(), rank - tp, /*tag=*/1);
          std::vector<float> out;
          if (l.last_stage()) out.resize(in.logits_rows.size() * size_t(c.head_rows()));
          model.forward(in, kv, out.empty() ? nullptr : out.data());
          if (!l.last_stage()) wc.send(h.data, h.bytes(), rank + tp, /*tag=*/1);
          if (l.last_stage()) logits[size_t(l.tp_rank)].push_back(std::move(out));
        }
      } catch (...) {
        errors[size_t(rank)] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return logits;
}

size_t argmax(const float* x, size_t n) { return size_t(std::max_element(x, x + n) - x); }

// Checks every last-stage TP rank's logits against the single-process ones (greedy argmax
// identical, all TP ranks identical); returns max |Δ| / max |logit|.
double compare(const std::vector<std::vector<float>>& want,
               const std::vector<std::vector<std::vector<float>>>& got, size_t V) {
  double scale = 0, worst = 0;
  for (const auto& step : want)
    for (float x : step) scale = std::max(scale, double(std::fabs(x)));
  EXPECT_GT(scale, 0.1);
  for (size_t r = 0; r < got.size(); ++r) {
    if (got[r].size() != want.size()) {
      ADD_FAILURE() << "tp rank " << r << " ran " << got[r].size() << " steps";
      return 1;
    }
    for (size_t s = 0; s < want.size(); ++s) {
      if (got[r][s].size() != want[s].size()) {
        ADD_FAILURE() << "tp rank " << r << " step " << s << ": wrong number of logits";
        return 1;
      }
      for (size_t i = 0; i < want[s].size(); ++i)
        worst = std::max(worst, double(std::fabs(got[r][s][i] - want[s][i])));
      for (size_t row = 0; row < want[s].size() / V; ++row)
        EXPECT_EQ(argmax(&got[r][s][row * V], V), argmax(&want[s][row * V], V))
            << "tp rank " << r << " step " << s << " row " << row;
      // Every TP rank returns the same gathered logits.
      if (r > 0) {
        EXPECT_EQ(got[r][s], got[0][s]);
      }
    }
  }
  return worst / std::max(scale, 1e-30);
}

class ParallelForwardTest : public ::testing::TestWithParam<std::tuple<int, int, bool>> {};

TEST_P(ParallelForwardTest, LastStageLogitsMatchSingleProcess) {
  const auto [tp, pp, tied] = GetParam();
  const ModelConfig c = config();
  std::shared_ptr<const LlamaWeights> w = random_weights(c, 11, tied);
  const auto want = run_single(c, w);
  const auto got = run_parallel(
      c, [&](const RankLayout&) { return w; }, tp, pp);
  const double ratio = compare(want, got, size_t(c.vocab_size));
  EXPECT_LE(ratio, 1e-4) << "tp " << tp << " pp " << pp;
  char text[32];
  std::snprintf(text, sizeof(text), "%.3g", ratio);
  RecordProperty("max_abs_diff_over_scale", text);
}

// The loader's per-rank parts (no whole model in any rank) on make-model's BF16 checkpoints,
// untied and tied (the last stage's head is then the embedding's vocabulary rows), and the
// reward model tiny-rm (its score head replicated on every TP rank: the scores match).
TEST(ParallelModel, ShardedCheckpointMatchesSingleProcess) {
  for (const char* shape : {"tiny", "tiny-tied", "tiny-rm"}) {
    testing::ScratchDir dir;
    MakeModelOptions o;
    o.shape = shape;
    o.output = dir.path();
    o.seed = 5;
    o.threads = 1;
    o.write_tokenizer = false;
    make_model(o);
    const ModelConfig c = load_model_config(dir.path());
    auto whole = std::make_shared<const LlamaWeights>(load_llama_weights(dir.path(), c));
    const auto want = run_single(c, whole);
    // tiny: 4 heads, 2 KV heads, 4 layers.
    for (const auto& [tp, pp] : {std::pair{2, 1}, std::pair{2, 2}, std::pair{1, 4}}) {
      SCOPED_TRACE(::testing::Message() << shape << " tp " << tp << " pp " << pp);
      const auto got = run_parallel(
          c,
          [&](const RankLayout& l) {
            auto part = std::make_shared<const LlamaWeights>(load_llama_weights(dir.path(), c, l));
            EXPECT_EQ(part->layers.size(), size_t(l.layer_end - l.layer_begin));
            EXPECT_EQ(part->embed_tokens.data != nullptr, l.first_stage());
            EXPECT_EQ(part->lm_head.data != nullptr, l.last_stage());
            return part;
          },
          tp, pp);
      EXPECT_LE(compare(want, got, size_t(c.head_rows())), 1e-4);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(TpPp, ParallelForwardTest,
                         ::testing::Combine(::testing::Values(1, 2, 4), ::testing::Values(1, 2, 4),
                                            ::testing::Values(false, true)),
                         [](const auto& info) {
                           return "tp" + std::to_string(std::get<0>(info.param)) + "_pp" +
                                  std::to_string(std::get<1>(info.param)) +
                                  (std::get<2>(info.param) ? "_tied" : "");
                         });

TEST(ParallelModel, RejectsALayoutTheModelCannotSplit) {
  ModelConfig c = config();
  auto w = random_weights(c, 1, false);
  auto be = make_cpu_backend(1);
  RankLayout l;
  l.tp_size = 3;  // 8 heads
  auto comms = make_thread_group(3, 1000);
  EXPECT_THROW(LlamaModel(c, w, *be, 8, 2, l, comms[0].get()), InvalidArgument);
  EXPECT_THROW(KvCache(*be, c, 4, kBlock, l), InvalidArgument);
  l.tp_size = 2;
  EXPECT_THROW(LlamaModel(c, w, *be, 8, 2, l, nullptr), InvalidArgument);  // no communicator
}

TEST(ParallelModel, KvCacheBytesPerBlockIsPerRank) {
  const ModelConfig c = config();
  const size_t whole = KvCache::bytes_per_block(c, kBlock, DType::kF32);
  EXPECT_EQ(whole, size_t(4 * 2 * kBlock * 4 * 8 * 4));
  RankLayout l;
  l.tp_size = 2;
  l.pp_size = 2;
  l.pp_rank = 1;
  l.layer_begin = 3;
  l.layer_end = 4;  // an uneven stage: 1 of 4 layers
  EXPECT_EQ(KvCache::bytes_per_block(c, kBlock, DType::kF32, l), whole / 4 / 2);
}

}  // namespace
}  // namespace herd
