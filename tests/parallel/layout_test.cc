#include "engine/parallel/layout.h"

#include <gtest/gtest.h>

#include <numeric>

#include "engine/common/error.h"

namespace herd {
namespace {

TEST(StageLayerCounts, Llama405BSplitsEvenlyOverTwoStages) {
  EXPECT_EQ(stage_layer_counts(126, 2), (std::vector<int>{63, 63}));
  EXPECT_EQ(stage_layer_counts(126, 1), (std::vector<int>{126}));
}

TEST(StageLayerCounts, RemainderGoesToStagesBeforeTheLast) {
  // 32 = 11 + 11 + 10: the last stage also runs the final norm and the LM head.
  EXPECT_EQ(stage_layer_counts(32, 3), (std::vector<int>{11, 11, 10}));
  EXPECT_EQ(stage_layer_counts(80, 3), (std::vector<int>{27, 27, 26}));
  EXPECT_EQ(stage_layer_counts(5, 2), (std::vector<int>{3, 2}));
  EXPECT_EQ(stage_layer_counts(3, 3), (std::vector<int>{1, 1, 1}));
}

TEST(StageLayerCounts, AlwaysSumsToTheLayersAndDiffersByAtMostOne) {
  for (int layers = 1; layers <= 130; ++layers)
    for (int pp = 1; pp <= std::min(layers, 9); ++pp) {
      std::vector<int> c = stage_layer_counts(layers, pp);
      ASSERT_EQ(int(c.size()), pp);
      EXPECT_EQ(std::accumulate(c.begin(), c.end(), 0), layers) << layers << "/" << pp;
      auto [lo, hi] = std::minmax_element(c.begin(), c.end());
      EXPECT_LE(*hi - *lo, 1) << layers << "/" << pp;
      EXPECT_EQ(c.back(), *lo) << "the last stage never gets an extra layer";
    }
}

TEST(StageLayerCounts, RejectsFewerLayersThanStages) {
  EXPECT_THROW(stage_layer_counts(2, 3), InvalidArgument);
  EXPECT_THROW(stage_layer_counts(32, 0), InvalidArgument);
  try {
    stage_layer_counts(2, 3);
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.param(), "pipeline-parallel-size");
    EXPECT_NE(std::string(e.what()).find("2 layers"), std::string::npos) << e.what();
  }
}

TEST(MakeRankLayout, Tp8Pp2For405B) {
  ParallelConfig pc;
  pc.tensor_parallel_size = 8;
  pc.pipeline_parallel_size = 2;
  // Rank 11: stage 1, TP rank 3; stage 1 holds layers 63..125.
  RankLayout l = make_rank_layout(pc, 126, 128, 8, 16, 11);
  EXPECT_EQ(l.tp_rank, 3);
  EXPECT_EQ(l.tp_size, 8);
  EXPECT_EQ(l.pp_rank, 1);
  EXPECT_EQ(l.pp_size, 2);
  EXPECT_EQ(l.layer_begin, 63);
  EXPECT_EQ(l.layer_end, 126);
  EXPECT_EQ(l.world_rank(), 11);
  EXPECT_TRUE(l.last_stage());
  EXPECT_FALSE(l.first_stage());
  EXPECT_FALSE(l.samples());
  RankLayout r0 = make_rank_layout(pc, 126, 128, 8, 16, 0);
  EXPECT_EQ(r0.layer_begin, 0);
  EXPECT_EQ(r0.layer_end, 63);
  EXPECT_TRUE(r0.first_stage());
  EXPECT_TRUE(make_rank_layout(pc, 126, 128, 8, 16, 8).samples());
  EXPECT_EQ(describe(l), "rank 11: stage 1/2 (layers 63..125), tp rank 3/8");
}

TEST(MakeRankLayout, StagesCoverEveryLayerOnce) {
  ParallelConfig pc;
  pc.tensor_parallel_size = 2;
  pc.pipeline_parallel_size = 3;
  int next = 0;
  for (int rank = 0; rank < 6; rank += 2) {  // TP rank 0 of each stage
    RankLayout l = make_rank_layout(pc, 32, 32, 8, 6, rank);
    EXPECT_EQ(l.layer_begin, next);
    next = l.layer_end;
    EXPECT_EQ(make_rank_layout(pc, 32, 32, 8, 6, rank + 1).layer_begin, l.layer_begin);
  }
  EXPECT_EQ(next, 32);
}

TEST(MakeRankLayout, RejectsHeadsNotDivisibleByTp) {
  ParallelConfig pc;
  pc.tensor_parallel_size = 3;
  EXPECT_THROW(make_rank_layout(pc, 32, 32, 8, 3, 0), InvalidArgument);  // 32 heads
  pc.tensor_parallel_size = 16;
  // 128 heads divide, 8 KV heads do not.
  try {
    make_rank_layout(pc, 126, 128, 8, 16, 0);
    FAIL() << "tp 16 with 8 KV heads accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.param(), "tensor-parallel-size");
    EXPECT_NE(std::string(e.what()).find("KV heads (8)"), std::string::npos) << e.what();
  }
  pc.tensor_parallel_size = 0;
  EXPECT_THROW(make_rank_layout(pc, 32, 32, 8, 0, 0), InvalidArgument);
}

TEST(MakeRankLayout, RejectsMoreStagesThanLayers) {
  ParallelConfig pc;
  pc.pipeline_parallel_size = 4;
  EXPECT_THROW(make_rank_layout(pc, 3, 32, 8, 4, 0), InvalidArgument);
}

TEST(MakeRankLayout, RejectsWorldSizeOtherThanTpTimesPp) {
  ParallelConfig pc;
  pc.tensor_parallel_size = 2;
  pc.pipeline_parallel_size = 2;
  try {
    make_rank_layout(pc, 32, 32, 8, 3, 0);
    FAIL() << "3 ranks accepted for tp 2 x pp 2";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("the job has 3 ranks"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("mpirun -np 4"), std::string::npos) << e.what();
  }
  pc.micro_batches = -1;
  EXPECT_THROW(make_rank_layout(pc, 32, 32, 8, 4, 0), InvalidArgument);
}

}  // namespace
}  // namespace herd
