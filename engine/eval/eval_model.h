// One model run without an engine, the way the quality report needs it: a prefill that
// returns the logits of chosen rows (teacher forcing), and greedy or seeded sampled
// generation through the paged KV cache, one sequence at a time. Two EvalModels of the same
// checkpoint (BF16 and FP8) run side by side on one backend; a reward model's "logits" are its
// scores (ModelConfig::head_rows()).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/model/config.h"
#include "engine/model/llama.h"
#include "engine/model/weights.h"

namespace herd::eval {

struct GenerateOptions {
  int max_tokens = 32;
  double temperature = 0;  // 0: greedy (argmax)
  uint64_t seed = 0;       // sampling only: the same seed gives the same Gumbel noise
  int32_t stop_id = -1;    // generation ends after this token (included); -1: never
};

class EvalModel {
 public:
  // max_len: the longest sequence (prompt + generated) any call will run.
  EvalModel(const ModelConfig& cfg, std::shared_ptr<const LlamaWeights> weights, Backend& backend,
            int max_len);

  // Runs ids as one prefill and returns the logits of rows [first_row, ids.size()), each
  // head_rows() floats: row r predicts ids[r + 1].
  std::vector<float> prefill_logits(const std::vector<int32_t>& ids, int first_row);

  // Continues `prompt` by up to opts.max_tokens tokens, one decode step at a time.
  std::vector<int32_t> generate(const std::vector<int32_t>& prompt, const GenerateOptions& opts);

  int64_t head_rows() const { return cfg_.head_rows(); }
  const ModelConfig& config() const { return cfg_; }

 private:
  StepInput step(const std::vector<int32_t>& ids, int begin, int end) const;

  ModelConfig cfg_;
  int max_len_;
  int max_blocks_;
  LlamaModel model_;
  KvCache kv_;
};

// Picks a token: argmax of logits / temperature + gumbel (the Gumbel-max trick: with gumbel[i]
// independent standard Gumbel noise this samples softmax(logits / temperature) exactly), or
// the plain argmax when temperature == 0. Two models given the same noise pick the same token
// unless their distributions differ where it matters (the coupling keeps P(differ) near their
// total-variation distance; an inverse-CDF coupling in vocab order would flip on every small
// shift of any earlier token's mass).
int32_t pick_token(const float* logits, int64_t n, double temperature, const double* gumbel);

}  // namespace herd::eval
