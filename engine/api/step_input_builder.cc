#include "engine/api/step_input_builder.h"

#include <algorithm>
#include <stdexcept>

namespace herd {

void build_step_input(const StepPlan& plan, int block_size, StepInput& in) {
  in.token_ids.clear();
  in.positions.clear();
  in.slot_mapping.clear();
  in.query_start.assign(1, 0);
  in.seq_lens.clear();
  in.block_tables.clear();
  in.logits_rows.clear();

  int max_blocks = 1;
  for (const ScheduledSeq& e : plan.entries) {
    const int ctx = e.start + e.num_tokens;
    max_blocks = std::max(max_blocks, (ctx + block_size - 1) / block_size);
  }
  in.max_blocks_per_seq = max_blocks;

  for (const ScheduledSeq& e : plan.entries) {
    const int ctx = e.start + e.num_tokens;
    const int needed = (ctx + block_size - 1) / block_size;
    if (int(e.block_table.size()) < needed || int(e.token_ids.size()) != e.num_tokens)
      throw std::logic_error("build_step_input: block table shorter than the context");
    for (int i = 0; i < e.num_tokens; ++i) {
      const int pos = e.position(i);
      in.token_ids.push_back(e.token_ids[size_t(i)]);
      in.positions.push_back(pos);
      in.slot_mapping.push_back(e.block_table[size_t(pos / block_size)] * block_size +
                                pos % block_size);
    }
    in.query_start.push_back(int32_t(in.token_ids.size()));
    in.seq_lens.push_back(ctx);
    for (int j = 0; j < max_blocks; ++j)
      in.block_tables.push_back(j < needed ? e.block_table[size_t(j)] : -1);
    if (e.sample) in.logits_rows.push_back(int32_t(in.token_ids.size()) - 1);
  }
}

}  // namespace herd
