#include "engine/eval/eval_model.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "engine/common/error.h"
#include "engine/eval/eval_stats.h"
#include "engine/model/single_sequence_step.h"

namespace herd::eval {

namespace {
constexpr int kBlockSize = 16;
}

EvalModel::EvalModel(const ModelConfig& cfg, std::shared_ptr<const LlamaWeights> weights,
                     Backend& backend, int max_len)
    : cfg_(cfg),
      max_len_(max_len),
      max_blocks_((max_len + kBlockSize - 1) / kBlockSize),
      // Every row of a prefill may want its logits: max_seqs bounds the logits rows.
      model_(cfg, std::move(weights), backend, max_len, max_len),
      kv_(backend, cfg, max_blocks_, kBlockSize) {}

// One sequence's step over ids[begin, end); its blocks are 0, 1, 2, ... in order (each call
// starts a new sequence from position 0 and overwrites the cache).
StepInput EvalModel::step(const std::vector<int32_t>& ids, int begin, int end) const {
  if (end > max_len_)
    throw Error(std::string("eval: sequence of ")
                    .append(std::to_string(end))
                    .append(" tokens exceeds the planned ")
                    .append(std::to_string(max_len_)));
  return single_sequence_step(ids, begin, end, max_blocks_, kBlockSize);
}

std::vector<float> EvalModel::prefill_logits(const std::vector<int32_t>& ids, int first_row) {
  const int n = int(ids.size());
  if (first_row < 0 || first_row >= n) throw Error("eval: prefill_logits: bad first row");
  StepInput in = step(ids, 0, n);
  for (int r = first_row; r < n; ++r) in.logits_rows.push_back(r);
  std::vector<float> logits(size_t(n - first_row) * size_t(head_rows()));
  model_.forward(in, kv_, logits.data());
  return logits;
}

std::vector<int32_t> EvalModel::generate(const std::vector<int32_t>& prompt,
                                         const GenerateOptions& opts) {
  std::vector<int32_t> ids = prompt, out;
  if (opts.max_tokens <= 0 || prompt.empty()) return out;
  std::mt19937_64 rng(opts.seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const int64_t V = head_rows();
  std::vector<double> gumbel(static_cast<size_t>(V), 0.0);
  std::vector<float> row = prefill_logits(ids, int(ids.size()) - 1);
  for (int g = 0; g < opts.max_tokens; ++g) {
    if (opts.temperature > 0)  // a fresh draw per step; greedy draws none
      for (double& x : gumbel) x = -std::log(-std::log(std::max(uniform(rng), 1e-300)));
    const int32_t next = pick_token(row.data(), V, opts.temperature, gumbel.data());
    out.push_back(next);
    if (next == opts.stop_id || g + 1 == opts.max_tokens) break;
    ids.push_back(next);
    const int len = int(ids.size());
    StepInput d = step(ids, len - 1, len);
    d.logits_rows = {0};
    model_.forward(d, kv_, row.data());
  }
  return out;
}

int32_t pick_token(const float* logits, int64_t n, double temperature, const double* gumbel) {
  if (!(temperature > 0)) return int32_t(argmax(logits, n));
  int64_t best = 0;
  double best_v = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    const double v = double(logits[i]) / temperature + gumbel[i];
    if (v > best_v) {
      best_v = v;
      best = i;
    }
  }
  return int32_t(best);
}

}  // namespace herd::eval
