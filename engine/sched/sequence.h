// Sequence and SequenceGroup: the scheduler's view of a request. A SequenceGroup is one request
// with n samples; each sample is a Sequence with its own outputs and block table. The prompt
// is held once (shared_ptr) by the group.
//
// A sequence's tokens are prompt ++ output. num_computed is how many of them have KV in its
// block table (their plans have landed); num_scheduled >= num_computed is how many are in a
// plan made so far, landed or still in flight; the rest (num_tokens() - num_scheduled) is what
// it still has to be given. There are no prefill/decode phases: a fresh request, a chunked
// prefill, a decode and a recompute after preemption are all "run tokens [num_scheduled,
// num_tokens)".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/api/types.h"
#include "engine/kv/block_hash.h"
#include "engine/kv/block_table.h"

namespace herd {

enum class SeqStatus {
  kWaiting,    // queued, never run (or only run by the shared-prompt fork path)
  kRunning,    // holds blocks, scheduled each step while the budgets allow
  kPreempted,  // was running; its blocks were freed and it waits to recompute
  kFinished,   // stopped, hit a length limit or was aborted; holds no blocks once no plan
               // in flight names it
};

class SequenceGroup;

class Sequence {
 public:
  Sequence(SequenceGroup* group, int index) : group_(group), index_(index) {}

  SequenceGroup& group() const { return *group_; }
  const std::string& request_id() const;
  int index() const { return index_; }  // sample index in [0, n)

  const std::vector<int32_t>& prompt() const;
  const std::vector<int32_t>& output() const { return output_; }
  int num_prompt_tokens() const { return int(prompt().size()); }
  int num_tokens() const { return num_prompt_tokens() + int(output_.size()); }
  int32_t token(int i) const;
  TokenSpan tokens() const { return TokenSpan(prompt(), output_); }
  KeyInputs key_inputs() const;

  int num_computed() const { return num_computed_; }
  int num_scheduled() const { return num_scheduled_; }
  // Plans made but not landed that name this sequence.
  int num_in_flight() const { return in_flight_; }
  SeqStatus status() const { return status_; }
  bool finished() const { return status_ == SeqStatus::kFinished; }
  FinishReason finish_reason() const { return finish_reason_; }
  const BlockTable& block_table() const { return table_; }
  int num_preemptions() const { return num_preemptions_; }
  // Prompt tokens found computed (prefix cache or shared prompt) at its first admission.
  int num_cached_prompt_tokens() const { return num_cached_prompt_tokens_; }

  void* handle = nullptr;  // the engine's per-sample state (sampler, detokenizer); unused here

 private:
  friend class Scheduler;
  SequenceGroup* group_;
  int index_;
  std::vector<int32_t> output_;
  int num_computed_ = 0;
  int num_scheduled_ = 0;
  int in_flight_ = 0;
  SeqStatus status_ = SeqStatus::kWaiting;
  FinishReason finish_reason_ = FinishReason::kNone;
  BlockTable table_;
  int reserve_left_ = 0;  // reserve policy: blocks it may still take from the pool
  int num_preemptions_ = 0;
  int num_cached_prompt_tokens_ = -1;  // -1 until first admitted
};

// What the engine hands the scheduler for one request.
struct NewRequest {
  std::string request_id;
  std::shared_ptr<const std::vector<int32_t>> prompt;
  int n = 1;
  int max_tokens = 0;  // per sample; clamped to max_model_len - prompt length
  int priority = 0;    // lower runs first; ties by arrival
  std::string cache_salt;
  std::vector<ExtraKey> extra_keys;
  void* handle = nullptr;
  // A score request (reward model): it finishes (kStop) when its prompt is computed, nothing
  // is appended, and no KV is ever allocated or reserved for output tokens. max_tokens is
  // ignored (0); the prompt may fill max_model_len. n must be 1.
  bool prefill_only = false;
};

class SequenceGroup {
 public:
  const std::string& request_id() const { return request_id_; }
  const std::vector<int32_t>& prompt() const { return *prompt_; }
  int n() const { return int(seqs_.size()); }
  Sequence& seq(int i) const { return *seqs_[i]; }
  int priority() const { return priority_; }
  int64_t arrival() const { return arrival_; }
  int max_tokens() const { return max_tokens_; }
  const std::string& cache_salt() const { return cache_salt_; }
  const std::vector<ExtraKey>& extra_keys() const { return extra_keys_; }
  bool finished() const;  // every sample finished
  // Prompt blocks all samples share: (prompt length - 1) / block_size when n > 1, else 0.
  int num_shared_blocks() const { return num_shared_blocks_; }
  bool prefill_only() const { return prefill_only_; }

  void* handle = nullptr;  // the engine's per-request state (sink, ...); unused here

 private:
  friend class Scheduler;
  std::string request_id_;
  std::shared_ptr<const std::vector<int32_t>> prompt_;
  std::vector<std::unique_ptr<Sequence>> seqs_;
  int priority_ = 0;
  int64_t arrival_ = 0;
  int max_tokens_ = 0;
  std::string cache_salt_;
  std::vector<ExtraKey> extra_keys_;
  int num_shared_blocks_ = 0;
  // Shared prompt: references on the first num_shared_blocks_ computed prompt blocks, taken
  // from sample 0 once it has computed them and held while other samples still wait to fork.
  BlockTable shared_;
  bool shared_made_ = false;
  bool reserved_ = false;  // reserve policy: blocks for all samples were set aside
  bool prefill_only_ = false;  // a score request (NewRequest::prefill_only)
};

}  // namespace herd
