// The rejection-sampling job behind `herd rs` (issue 12 part 2): for every prompt of a JSONL
// file, K samples from the policy engine (one request with n = K, so the K samples share the
// prompt's KV pages), each scored by a reward model, the best kept and the others marked
// rejected (ready to become preference pairs). One JSONL record per prompt is appended to the
// output as soon as the prompt is done (ResultJournal): a killed run loses only the prompts in
// flight, and rerunning the same command skips the prompts already written. The sampling seed
// of a prompt is derived from --seed and the prompt's id alone, so a rerun (or a resumed run)
// gives the same candidates whatever else is in the batch.
//
// Input lines: {"id": ..., "messages": [{"role", "content"}, ...]} (chat: rendered with the
// Llama 3.1 chat template) or {"id": ..., "prompt": "..."} (raw text). A line that is not JSON,
// lacks an id, repeats one, or has neither messages nor prompt is reported with its line number
// and skipped (never silently dropped).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/api/engine.h"
#include "engine/tokenizer/chat_format.h"

namespace herd {

class Tokenizer;

// Where the reward scores come from: an in-process reward engine (EngineScorer) or another
// herd server's /pooling route (`--reward-url`, cli/).
class RewardScorer {
 public:
  virtual ~RewardScorer() = default;
  using Done = std::function<void(std::vector<float> scores, std::string error)>;
  // Scores one token sequence; `done` is called exactly once, from any thread, and must not
  // block. May throw (the request was refused).
  virtual void score(const std::string& id, std::vector<int32_t> ids, Done done) = 0;
  // The reward model's tokenizer: the conversations it scores are rendered with it.
  virtual const Tokenizer& tokenizer() const = 0;
};

// Scores through an Engine whose model is a reward model (ModelConfig::is_reward_model()).
class EngineScorer final : public RewardScorer {
 public:
  explicit EngineScorer(Engine& engine);  // throws herd::Error when it is not a reward model
  void score(const std::string& id, std::vector<int32_t> ids, Done done) override;
  const Tokenizer& tokenizer() const override;

 private:
  Engine& engine_;
};

struct RsOptions {
  std::string prompts_path;
  std::string output_path;
  int samples = 4;  // K
  int max_tokens = 256;
  double temperature = 1.0;
  double top_p = 1.0;
  uint64_t seed = 0;
  // Chat inputs without a system message get this one first; for text prompts it is prefixed
  // to the text followed by a blank line. Empty: none.
  std::string system_prompt;
  // false: the K samples go as K separate n = 1 requests (no prompt page sharing) — only for
  // the benchmark that measures what sharing buys.
  bool share_prompt = true;
  // Prompts submitted to the policy engine at once (0: enough to fill the engine's
  // max_num_seqs with samples, twice over).
  int prompts_in_flight = 0;
  bool fsync = false;  // fdatasync the output after every record
};

struct RsBadLine {
  int64_t line_no = 0;
  std::string error;
};

struct RsSummary {
  int64_t total = 0;    // prompts in the input (valid lines)
  int64_t resumed = 0;  // already in the output: skipped
  int64_t done = 0;     // written by this run
  int64_t failed = 0;   // the engine failed them (not written: a rerun retries them)
  std::vector<RsBadLine> bad_lines;
  int64_t output_tokens = 0;
  double elapsed_s = 0;
  // Wall time during which some reward request was outstanding, and its share of elapsed_s.
  double reward_busy_s = 0;
  nlohmann::json progress;  // JobProgress::summary()
  nlohmann::json json() const;
};

// One prompt of the input, parsed.
struct RsPrompt {
  int64_t line_no = 0;
  nlohmann::json id;  // as in the input (string or number)
  std::string key;    // ResultJournal::key_of(id)
  bool is_chat = false;
  std::vector<ChatMessage> messages;  // is_chat (system prompt applied)
  std::string text;                   // !is_chat (system prompt applied)
  nlohmann::json input;               // the line's "messages" or "prompt" value, as given
};

// Parses one input line's value; throws herd::InvalidArgument naming the field.
RsPrompt parse_rs_prompt(const nlohmann::json& line, const std::string& system_prompt);

// The sampling seed of a prompt: a function of the job seed and the prompt's key only.
uint64_t rs_prompt_seed(uint64_t job_seed, const std::string& key);

// Runs the job to the end (bad lines and failed prompts are counted, not thrown). `log` gets
// one line per bad input line and the progress line (on a terminal: `interactive`). Throws
// herd::Error when the input or output cannot be opened.
RsSummary run_rejection_sampling(Engine& policy, RewardScorer& reward, const RsOptions& opts,
                                 FILE* log, bool interactive);

}  // namespace herd
