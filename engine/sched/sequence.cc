#include "engine/sched/sequence.h"

namespace herd {

const std::string& Sequence::request_id() const { return group_->request_id(); }

const std::vector<int32_t>& Sequence::prompt() const { return group_->prompt(); }

int32_t Sequence::token(int i) const {
  const int p = num_prompt_tokens();
  return i < p ? prompt()[i] : output_[i - p];
}

KeyInputs Sequence::key_inputs() const {
  return KeyInputs{tokens(), group_->cache_salt(), group_->extra_keys()};
}

bool SequenceGroup::finished() const {
  for (const auto& s : seqs_)
    if (!s->finished()) return false;
  return true;
}

}  // namespace herd
