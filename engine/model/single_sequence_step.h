#pragma once

#include <cstdint>
#include <vector>

#include "engine/model/llama.h"

namespace herd {

// One sequence alone in a step, for tools that run the model without an engine (herd logits,
// herd eval): tokens [begin, end) of `ids` at their positions, the sequence's KV in blocks 0, 1,
// 2, ... of `block_size` slots in order, a block table of `max_blocks` entries (-1 padded).
StepInput single_sequence_step(const std::vector<int32_t>& ids, int begin, int end, int max_blocks,
                               int block_size);

}  // namespace herd
