// StepPlan: what the engine must run in one step. For each scheduled sequence, the tokens
// [start, start + num_tokens) of prompt ++ output, at positions start.., with KV slots given by
// its block table (slot of position p = block_table[p / block_size] * block_size +
// p % block_size). Tokens [0, start) have KV once every earlier plan has run (computed earlier,
// a prefix-cache hit, a shared prompt, or a chunk of an earlier plan still in flight: plans
// run in the order they were made). When `sample` is set the step reaches the end of the
// sequence's known tokens, so the engine samples one token from the logits of its last
// position.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/sched/sequence.h"

namespace herd {

struct ScheduledSeq {
  Sequence* seq = nullptr;
  int start = 0;                   // == tokens already cached for this sequence
  int num_tokens = 0;              // new tokens this step
  std::vector<int32_t> token_ids;  // tokens [start, start + num_tokens)
  // A copy of the sequence's block table as of this plan (at least up to start + num_tokens):
  // the executor may read a plan after later schedule() calls have grown (reallocated) the
  // sequence's own table.
  std::vector<int32_t> block_table;
  bool sample = false;

  int position(int i) const { return start + i; }
};

struct StepPlan {
  int64_t id = -1;                    // increasing per non-empty plan; -1 for an empty plan
  std::vector<ScheduledSeq> entries;  // running sequences first, then newly admitted ones
  std::vector<Sequence*> preempted;   // freed this step; they wait to recompute
  int num_batched_tokens = 0;

  bool empty() const { return entries.empty(); }
  int num_to_sample() const {
    int n = 0;
    for (const auto& e : entries) n += e.sample;
    return n;
  }
};

}  // namespace herd
