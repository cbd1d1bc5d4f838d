#include "engine/sample/stop_checker.h"

#include <algorithm>
#include <stdexcept>
#include <string_view>

namespace herd {

StopChecker::StopChecker(const Tokenizer& tok, const SamplingParams& p,
                         std::vector<int32_t> eos_ids, int prompt_len, int max_model_len)
    : detok_(tok, p.skip_special_tokens),
      stop_(p.stop),
      stop_ids_(p.stop_token_ids),
      eos_ids_(std::move(eos_ids)),
      ignore_eos_(p.ignore_eos),
      min_tokens_(p.min_tokens),
      max_tokens_(p.max_tokens.value_or(max_model_len - prompt_len)),
      tokens_left_in_context_(max_model_len - prompt_len) {
  // Empty stop strings would match everywhere; validation rejects them, be safe anyway.
  std::erase_if(stop_, [](const std::string& s) { return s.empty(); });
  for (const auto& s : stop_) longest_stop_ = std::max(longest_stop_, s.size());
}

StopChecker::Step StopChecker::push(int32_t token) {
  if (finished_) throw std::logic_error("StopChecker::push: the sample has already finished");
  ++num_output_;
  const bool may_stop = num_output_ > min_tokens_;
  Step step;

  const auto contains = [](const std::vector<int32_t>& v, int32_t id) {
    return std::find(v.begin(), v.end(), id) != v.end();
  };
  if (may_stop && !ignore_eos_ && contains(eos_ids_, token)) {
    finish(step, FinishReason::kStop, "");
    return step;
  }
  if (may_stop && contains(stop_ids_, token)) {
    finish(step, FinishReason::kStop, std::to_string(token));
    return step;
  }

  const size_t before = pending_.size();
  pending_ += detok_.push(token);
  if (may_stop && scan_for_stop_string(before, step)) return step;

  if (num_output_ >= max_tokens_ || num_output_ >= tokens_left_in_context_) {
    finish(step, FinishReason::kLength, "");
    return step;
  }
  emit_safe_prefix(step);
  return step;
}

// Finds the earliest stop string occurrence that ends inside pending_[new_from..): one ending
// earlier would have been found on an earlier token (or lay before min_tokens).
bool StopChecker::scan_for_stop_string(size_t new_from, Step& step) {
  size_t best_pos = std::string::npos;
  const std::string* best = nullptr;
  for (const auto& s : stop_) {
    const size_t start = new_from >= s.size() ? new_from - s.size() + 1 : 0;
    const size_t pos = pending_.find(s, start);
    if (pos != std::string::npos && (best == nullptr || pos < best_pos)) {
      best_pos = pos;
      best = &s;
    }
  }
  if (best == nullptr) return false;
  step.text = pending_.substr(0, best_pos);
  pending_.clear();
  step.finish = FinishReason::kStop;
  step.stop_reason = *best;
  finished_ = true;
  return true;
}

// Releases what the detokenizer still holds (a broken trailing character becomes U+FFFD) and
// all held-back text, unless a stop string completes in it.
void StopChecker::finish(Step& step, FinishReason reason, std::string stop_reason) {
  const size_t before = pending_.size();
  pending_ += detok_.flush();
  if (num_output_ > min_tokens_ && scan_for_stop_string(before, step)) return;
  step.text = std::move(pending_);
  pending_.clear();
  step.finish = reason;
  step.stop_reason = std::move(stop_reason);
  finished_ = true;
}

// Emits pending_ up to the earliest position from which the rest is a proper prefix of some
// stop string (that tail may still become a stop string). Such a position is always the start
// of a character, since stop strings are valid UTF-8 and begin with a lead byte.
void StopChecker::emit_safe_prefix(Step& step) {
  size_t hold = pending_.size();
  const size_t lo = pending_.size() >= longest_stop_ ? pending_.size() - longest_stop_ + 1 : 0;
  for (size_t s = lo; s < pending_.size() && hold == pending_.size(); ++s) {
    const std::string_view tail = std::string_view(pending_).substr(s);
    for (const auto& stop : stop_) {
      if (stop.size() > tail.size() && stop.compare(0, tail.size(), tail) == 0) {
        hold = s;
        break;
      }
    }
  }
  step.text = pending_.substr(0, hold);
  pending_.erase(0, hold);
}

}  // namespace herd
