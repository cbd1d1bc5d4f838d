// Turns a scheduler StepPlan into the model's flat step buffers (issue #3 part 5): one varlen
// batch of every scheduled sequence's new tokens, their positions and KV slots, the block
// tables, and the rows whose logits are sampled (the last new token of each entry with
// `sample` set). Kept apart from the engine loop so it can be tested on its own.
#pragma once

#include "engine/model/llama.h"
#include "engine/sched/step_plan.h"

namespace herd {

// `in` is reused across steps (its vectors keep their capacity).
void build_step_input(const StepPlan& plan, int block_size, StepInput& in);

}  // namespace herd
