// Where a rank sits in a TP x PP job and which part of the model it holds.
//
// World rank r = pp_rank * tp_size + tp_rank: the TP group of a stage is tp_size consecutive
// ranks (one node's GPUs over NVLink), stage s+1 follows stage s (the second node). Rank 0 is
// TP rank 0 of the first stage: it runs the server, the tokenizer and the engine core.
#pragma once

#include <string>
#include <vector>

namespace herd {

struct ParallelConfig {
  int tensor_parallel_size = 1;
  int pipeline_parallel_size = 1;
  int micro_batches = 0;  // plans in flight; 0 = pipeline_parallel_size
  int plans_in_flight() const {
    return micro_batches > 0 ? micro_batches : pipeline_parallel_size;
  }
  int world_size() const { return tensor_parallel_size * pipeline_parallel_size; }
};

struct RankLayout {
  int tp_rank = 0, tp_size = 1;
  int pp_rank = 0, pp_size = 1;
  int layer_begin = 0, layer_end = 0;  // this stage's decoder layers [begin, end)

  int world_rank() const { return pp_rank * tp_size + tp_rank; }
  bool first_stage() const { return pp_rank == 0; }
  bool last_stage() const { return pp_rank == pp_size - 1; }
  // Ranks that sample (the logits are gathered there) and answer rank 0.
  bool samples() const { return last_stage() && tp_rank == 0; }
};

// Decoder layers per pipeline stage, in stage order, summing to num_layers: as even as
// possible, the remainder going to the middle and first stages, since the last stage also
// carries the final norm and the LM head (for 405B: 126 layers, PP 2 -> 63 + 63; the LM
// head's 2.1 B parameters are worth about 0.65 of a layer per token). Throws
// herd::InvalidArgument when num_layers < pp_size.
std::vector<int> stage_layer_counts(int num_layers, int pp_size);

// Checks tp/pp against the model (heads and KV heads divisible by tp, layers >= pp,
// world_size == tp * pp) and returns the layout of world rank `rank`. Throws
// herd::InvalidArgument with one clear message.
RankLayout make_rank_layout(const ParallelConfig& pc, int num_layers, int num_heads,
                            int num_kv_heads, int world_size, int rank);

std::string describe(const RankLayout& l);

}  // namespace herd
