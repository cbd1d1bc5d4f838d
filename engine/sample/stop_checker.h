// Stop conditions and streamed text for ONE sample of a request. The engine feeds it every
// sampled token; it answers with the text to emit now and, on the last token, why the sample
// finished.
//
// Rules (vLLM's, see vllm/v1/core/sched/utils.py check_stop and the v1 detokenizer):
//  - Stop conditions only count once more than min_tokens tokens were generated (token number
//    min_tokens + 1 is the first that can stop the sample).
//  - An eos id (the model's, from generation_config; ignored when ignore_eos) or a
//    stop_token_ids id ends the sample with "stop"; that token's own text is not emitted.
//    stop_reason: "" for eos, the id in decimal for stop_token_ids.
//  - A stop string ends the sample with "stop" as soon as the text contains it, across token
//    boundaries; the text emitted stops just before it (the stop string itself is never
//    emitted, not even partly): any text tail that could still grow into a stop string is
//    held back until it cannot, and released when the sample finishes otherwise. The earliest
//    occurrence wins (equal starts: the first in `stop`). stop_reason: the string.
//  - max_tokens generated, or prompt + output reaching max_model_len, ends it with "length"
//    (a stop condition on that same token wins).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/api/types.h"
#include "engine/tokenizer/tokenizer.h"

namespace herd {

class StopChecker {
 public:
  struct Step {
    std::string text;  // complete UTF-8 text to emit now (possibly empty)
    FinishReason finish = FinishReason::kNone;
    std::string stop_reason;
  };

  // `tok` must outlive the checker; `p` is copied from (stop strings, ids, limits).
  StopChecker(const Tokenizer& tok, const SamplingParams& p, std::vector<int32_t> eos_ids,
              int prompt_len, int max_model_len);

  // Feeds the next sampled token. Throws std::logic_error once the sample has finished.
  Step push(int32_t token);

  bool finished() const { return finished_; }
  int num_output_tokens() const { return num_output_; }
  int max_tokens() const { return max_tokens_; }

 private:
  bool scan_for_stop_string(size_t new_from, Step& step);
  void finish(Step& step, FinishReason reason, std::string stop_reason);
  void emit_safe_prefix(Step& step);

  IncrementalDetokenizer detok_;
  std::vector<std::string> stop_;
  std::vector<int32_t> stop_ids_;
  std::vector<int32_t> eos_ids_;
  bool ignore_eos_;
  int min_tokens_;
  int max_tokens_;
  int tokens_left_in_context_;  // max_model_len - prompt_len
  size_t longest_stop_ = 0;
  int num_output_ = 0;
  bool finished_ = false;
  std::string pending_;  // decoded text not yet emitted (a held-back possible stop prefix)
};

}  // namespace herd
