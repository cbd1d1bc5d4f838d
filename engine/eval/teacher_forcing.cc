#include "engine/eval/teacher_forcing.h"

#include <algorithm>
#include <cmath>

#include "engine/common/error.h"
#include "engine/eval/eval_stats.h"

namespace herd::eval {

void compare_distributions(const float* ref, const float* cand, int64_t rows, int64_t vocab,
                           TokenComparison& acc) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* p = ref + r * vocab;
    const float* q = cand + r * vocab;
    acc.kl.push_back(kl_divergence(p, q, vocab));
    acc.top1_agree += argmax(p, vocab) == argmax(q, vocab);
    double diff = 0;
    for (int64_t i = 0; i < vocab; ++i)
      diff = std::max(diff, std::fabs(double(q[i]) - double(p[i])));
    acc.max_abs_logit_diff.push_back(diff);
    acc.reference_entropy.push_back(entropy(p, vocab));
  }
}

void teacher_force(EvalModel& ref, EvalModel& cand, const std::vector<int32_t>& prompt,
                   const std::vector<int32_t>& continuation, TokenComparison& acc) {
  if (continuation.empty()) return;
  if (prompt.empty()) throw Error("eval: teacher forcing needs a non-empty prompt");
  if (ref.head_rows() != cand.head_rows())
    throw Error("eval: the two models have different vocabularies");
  std::vector<int32_t> ids = prompt;
  ids.insert(ids.end(), continuation.begin(), continuation.end() - 1);
  const int first = int(prompt.size()) - 1;
  const auto p = ref.prefill_logits(ids, first);
  const auto q = cand.prefill_logits(ids, first);
  compare_distributions(p.data(), q.data(), int64_t(continuation.size()), ref.head_rows(), acc);
}

}  // namespace herd::eval
