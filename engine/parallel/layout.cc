#include "engine/parallel/layout.h"

#include "engine/common/error.h"

namespace herd {

std::vector<int> stage_layer_counts(int num_layers, int pp_size) {
  if (pp_size < 1)
    throw InvalidArgument("pipeline-parallel-size", "--pipeline-parallel-size must be >= 1");
  if (num_layers < pp_size)
    throw InvalidArgument("pipeline-parallel-size",
                          "--pipeline-parallel-size " + std::to_string(pp_size) +
                              " exceeds the model's " + std::to_string(num_layers) +
                              " layers (each stage needs at least one)");
  std::vector<int> counts(size_t(pp_size), num_layers / pp_size);
  // Extra layers go to the stages before the last (which also runs the LM head).
  int extra = num_layers % pp_size;
  for (int s = 0; extra > 0; s = (s + 1) % std::max(1, pp_size - 1), --extra) ++counts[size_t(s)];
  return counts;
}

RankLayout make_rank_layout(const ParallelConfig& pc, int num_layers, int num_heads,
                            int num_kv_heads, int world_size, int rank) {
  const int tp = pc.tensor_parallel_size, pp = pc.pipeline_parallel_size;
  if (tp < 1)
    throw InvalidArgument("tensor-parallel-size", "--tensor-parallel-size must be >= 1");
  if (num_heads % tp != 0 || num_kv_heads % tp != 0)
    throw InvalidArgument("tensor-parallel-size",
                          "--tensor-parallel-size " + std::to_string(tp) +
                              " must divide the model's attention heads (" +
                              std::to_string(num_heads) + ") and KV heads (" +
                              std::to_string(num_kv_heads) + ")");
  const std::vector<int> counts = stage_layer_counts(num_layers, pp);
  if (world_size != tp * pp)
    throw InvalidArgument("tensor-parallel-size",
                          "the job has " + std::to_string(world_size) +
                              " ranks but --tensor-parallel-size " + std::to_string(tp) +
                              " x --pipeline-parallel-size " + std::to_string(pp) + " needs " +
                              std::to_string(tp * pp) + " (mpirun -np " +
                              std::to_string(tp * pp) + ")");
  if (pc.micro_batches < 0)
    throw InvalidArgument("micro-batches", "--micro-batches must be >= 0 (0 = one per stage)");
  RankLayout l;
  l.tp_size = tp;
  l.pp_size = pp;
  l.tp_rank = rank % tp;
  l.pp_rank = rank / tp;
  for (int s = 0; s < l.pp_rank; ++s) l.layer_begin += counts[size_t(s)];
  l.layer_end = l.layer_begin + counts[size_t(l.pp_rank)];
  return l;
}

std::string describe(const RankLayout& l) {
  return "rank " + std::to_string(l.world_rank()) + ": stage " + std::to_string(l.pp_rank) +
         "/" + std::to_string(l.pp_size) + " (layers " + std::to_string(l.layer_begin) + ".." +
         std::to_string(l.layer_end - 1) + "), tp rank " + std::to_string(l.tp_rank) + "/" +
         std::to_string(l.tp_size);
}

}  // namespace herd
