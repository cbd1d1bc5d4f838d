// Teacher forcing: the reference (BF16) and the candidate (FP8) model read the same token
// sequence — the prompt and the reference's own greedy continuation — and their next-token
// distributions are compared position by position (KL divergence, top-1 agreement). Unlike
// free-running generation, one early disagreement cannot change what later positions see.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/eval/eval_model.h"

namespace herd::eval {

struct TokenComparison {
  std::vector<double> kl;  // KL(reference || candidate) per position, nats
  int64_t top1_agree = 0;  // positions whose argmax is the same
  // Per position: max |candidate logit - reference logit| (shows the quantization acting even
  // where the distributions hardly move) and the reference's entropy in nats (a KL reads
  // differently against a near-uniform or a peaked distribution).
  std::vector<double> max_abs_logit_diff, reference_entropy;
  int64_t tokens() const { return int64_t(kl.size()); }
};

// Adds `rows` positions: ref and cand each hold rows x vocab logits.
void compare_distributions(const float* ref, const float* cand, int64_t rows, int64_t vocab,
                           TokenComparison& acc);

// Both models read prompt + continuation[0, n - 1); the n positions predicting continuation[i]
// (the last prompt position first) are compared into acc. An empty continuation adds nothing.
void teacher_force(EvalModel& ref, EvalModel& cand, const std::vector<int32_t>& prompt,
                   const std::vector<int32_t>& continuation, TokenComparison& acc);

}  // namespace herd::eval
