#include "engine/model/single_sequence_step.h"

namespace herd {

StepInput single_sequence_step(const std::vector<int32_t>& ids, int begin, int end, int max_blocks,
                               int block_size) {
  StepInput in;
  for (int p = begin; p < end; ++p) {
    in.token_ids.push_back(ids[size_t(p)]);
    in.positions.push_back(p);
    in.slot_mapping.push_back(p);  // block p / block_size, offset p % block_size
  }
  in.query_start = {0, end - begin};
  in.seq_lens = {end};
  in.max_blocks_per_seq = max_blocks;
  const int used = (end + block_size - 1) / block_size;
  for (int j = 0; j < max_blocks; ++j) in.block_tables.push_back(j < used ? j : -1);
  return in;
}

}  // namespace herd
