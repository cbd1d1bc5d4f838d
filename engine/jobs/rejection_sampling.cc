#include "engine/jobs/rejection_sampling.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <unordered_set>

#include "engine/api/prompt.h"
#include "engine/common/error.h"
#include "engine/jobs/job_progress.h"
#include "engine/jobs/jsonl_input.h"
#include "engine/jobs/result_journal.h"
#include "engine/model/config.h"
#include "engine/tokenizer/tokenizer.h"

namespace herd {

using json = nlohmann::json;

// ---------------------------------------------------------------- EngineScorer

EngineScorer::EngineScorer(Engine& engine) : engine_(engine) {
  if (!engine.model_config().is_reward_model())
    throw Error(
        "--reward: the model is not a reward model (config.json architectures must be "
        "LlamaForSequenceClassification)");
}

const Tokenizer& EngineScorer::tokenizer() const { return engine_.tokenizer(); }

void EngineScorer::score(const std::string& id, std::vector<int32_t> ids, Done done) {
  Request r;
  r.id = id;
  r.prompt_ids = std::move(ids);
  // The sink owns `done`; a score request has exactly one delta, the final one.
  engine_.add_request(std::move(r), [done = std::move(done)](const Output& o) {
    if (!o.request_finished) return;
    if (!o.error.empty() || o.scores.empty())
      done({}, o.error.empty() ? std::string("the reward request was aborted") : o.error);
    else
      done(o.scores, "");
  });
}

// ---------------------------------------------------------------- input

namespace {

bool valid_role(const std::string& r) {
  return r == "system" || r == "user" || r == "assistant" || r == "tool" || r == "ipython";
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t rs_prompt_seed(uint64_t job_seed, const std::string& key) {
  // FNV-1a of the key (stable across runs and platforms, unlike std::hash), mixed with the seed.
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ULL;
  return splitmix64(h ^ splitmix64(job_seed));
}

RsPrompt parse_rs_prompt(const json& line, const std::string& system_prompt) {
  if (!line.is_object()) throw InvalidArgument("", "expected a JSON object");
  RsPrompt p;
  const auto id = line.find("id");
  if (id == line.end() || !(id->is_string() || id->is_number_integer()))
    throw InvalidArgument("id", "'id' (a string or an integer) is required");
  if (id->is_string() && id->get<std::string>().empty())
    throw InvalidArgument("id", "'id' must not be empty");
  p.id = *id;
  p.key = ResultJournal::key_of(*id);
  const bool has_messages = line.contains("messages"), has_prompt = line.contains("prompt");
  if (has_messages == has_prompt)
    throw InvalidArgument(has_messages ? "messages" : "prompt",
                          "give exactly one of 'messages' (chat) and 'prompt' (text)");
  if (has_prompt) {
    const json& t = line["prompt"];
    if (!t.is_string() || t.get<std::string>().empty())
      throw InvalidArgument("prompt", "'prompt' must be a non-empty string");
    p.input = t;
    p.text = system_prompt.empty() ? t.get<std::string>()
                                   : system_prompt + "\n\n" + t.get<std::string>();
    return p;
  }
  const json& m = line["messages"];
  if (!m.is_array() || m.empty())
    throw InvalidArgument("messages", "'messages' must be a non-empty list");
  p.is_chat = true;
  p.input = m;
  for (size_t i = 0; i < m.size(); ++i) {
    const std::string where = std::string("messages[").append(std::to_string(i)).append("]");
    const json& e = m[i];
    if (!e.is_object() || !e.contains("role") || !e["role"].is_string() || !e.contains("content") ||
        !e["content"].is_string())
      throw InvalidArgument(where, "each message needs a string 'role' and 'content'");
    ChatMessage cm;
    cm.role = e["role"].get<std::string>();
    if (cm.role == "developer") cm.role = "system";
    if (!valid_role(cm.role))
      throw InvalidArgument(where + ".role", "unknown role '" + cm.role + "'");
    cm.content = e["content"].get<std::string>();
    p.messages.push_back(std::move(cm));
  }
  if (!system_prompt.empty() && p.messages.front().role != "system") {
    ChatMessage sys;
    sys.role = "system";
    sys.content = system_prompt;
    p.messages.insert(p.messages.begin(), std::move(sys));
  }
  return p;
}

json RsSummary::json() const {
  nlohmann::json bad = nlohmann::json::array();
  for (const RsBadLine& b : bad_lines) bad.push_back({{"line", b.line_no}, {"error", b.error}});
  nlohmann::json j = progress.is_object() ? progress : nlohmann::json::object();
  j["prompts"] = total;
  j["resumed"] = resumed;
  j["written"] = done;
  j["failed"] = failed;
  j["bad_lines"] = bad;
  j["output_tokens"] = output_tokens;
  j["elapsed_s"] = elapsed_s;
  j["reward_busy_s"] = reward_busy_s;
  j["reward_share"] = elapsed_s > 0 ? reward_busy_s / elapsed_s : 0.0;
  return j;
}

// ---------------------------------------------------------------- the job

namespace {

using Clock = std::chrono::steady_clock;

struct Candidate {
  std::string text;
  int tokens = 0;
  std::string finish;
  std::vector<float> scores;
};

// One prompt while it is in flight. Written by the sinks (engine threads) and read by the job
// thread, always under Job::mu_.
struct Item {
  RsPrompt p;
  uint64_t seed = 0;
  int prompt_tokens = 0;
  std::vector<Candidate> cands;
  int policy_open = 0;  // policy requests not finished
  int scores_open = 0;  // reward requests not answered
  int reward_tokens = 0;
  std::string error;
};

class Job {
 public:
  Job(Engine& policy, RewardScorer& reward, const RsOptions& o, FILE* log)
      : policy_(policy), reward_(reward), o_(o), log_(log) {}

  RsSummary run(bool interactive) {
    const Clock::time_point t0 = Clock::now();
    ResultJournal journal(o_.output_path, "id");
    if (journal.torn_lines_cut() > 0 && log_)
      std::fprintf(log_, "[herd rs] %s: cut a torn last line (a killed run); redoing it\n",
                   o_.output_path.c_str());
    std::vector<RsPrompt> todo = read_input(journal);
    JobProgress progress(summary_.total, summary_.resumed, log_, interactive);
    const int window = std::max(1, o_.prompts_in_flight > 0 ? o_.prompts_in_flight : 8);
    size_t next = 0;
    int active = 0;
    std::unique_lock<std::mutex> lock(mu_);
    while (next < todo.size() || active > 0) {
      while (next < todo.size() && active < window) {
        auto item = std::make_shared<Item>();
        item->p = std::move(todo[next++]);
        lock.unlock();
        const bool ok = submit_policy(item);
        lock.lock();
        active += ok;
      }
      cv_.wait(lock, [&] { return !ready_.empty(); });
      std::shared_ptr<Item> item = std::move(ready_.front());
      ready_.pop_front();
      if (!item->error.empty()) {
        if (log_)
          std::fprintf(log_, "[herd rs] line %lld (id %s): failed: %s\n",
                       (long long)item->p.line_no, item->p.key.c_str(), item->error.c_str());
        ++summary_.failed;
        progress.add_failed();
        --active;
        continue;
      }
      if (item->policy_open == 0 && item->scores_open < 0) {
        // Sampled; score every candidate (scores_open was -1: not yet sent).
        lock.unlock();
        submit_scores(item);
        lock.lock();
        continue;
      }
      // Scored: the record goes out.
      lock.unlock();
      const json rec = record(*item);
      journal.append(rec, o_.fsync);
      int out_tokens = 0;
      for (const Candidate& c : item->cands) out_tokens += c.tokens;
      progress.add_done(out_tokens);
      lock.lock();
      summary_.output_tokens += out_tokens;
      ++summary_.done;
      --active;
    }
    lock.unlock();
    progress.finish();
    summary_.elapsed_s = std::chrono::duration<double>(Clock::now() - t0).count();
    summary_.reward_busy_s = reward_busy_s_;
    summary_.progress = progress.summary();
    return summary_;
  }

 private:
  void bad_line(int64_t line_no, const std::string& error) {
    summary_.bad_lines.push_back({line_no, error});
    if (log_)
      std::fprintf(log_, "[herd rs] %s:%lld: skipped: %s\n", o_.prompts_path.c_str(),
                   (long long)line_no, error.c_str());
  }

  std::vector<RsPrompt> read_input(const ResultJournal& journal) {
    JsonlInput in(o_.prompts_path);
    std::vector<RsPrompt> todo;
    std::unordered_set<std::string> seen;
    while (auto line = in.next()) {
      if (!line->ok()) {
        bad_line(line->line_no, line->error);
        continue;
      }
      RsPrompt p;
      try {
        p = parse_rs_prompt(line->value, o_.system_prompt);
      } catch (const InvalidArgument& e) {
        bad_line(line->line_no,
                 e.param().empty() ? std::string(e.what()) : e.param() + ": " + e.what());
        continue;
      }
      p.line_no = line->line_no;
      if (!seen.insert(p.key).second) {
        bad_line(line->line_no, "id " + p.key + " repeats an earlier line's");
        continue;
      }
      ++summary_.total;
      if (journal.done(p.key)) {
        ++summary_.resumed;
        continue;
      }
      todo.push_back(std::move(p));
    }
    return todo;
  }

  std::vector<int32_t> policy_prompt(const RsPrompt& p) const {
    const Tokenizer& tok = policy_.tokenizer();
    if (!p.is_chat) return encode_prompt(tok, p.text, /*add_bos=*/true);
    return encode_llama31_chat(tok, p.messages, ChatFormatOptions{});
  }

  // The conversation the reward model scores: the prompt and one candidate as the reply.
  std::vector<int32_t> reward_input(const RsPrompt& p, const std::string& reply) const {
    const Tokenizer& tok = reward_.tokenizer();
    if (!p.is_chat) return encode_prompt(tok, p.text + reply, /*add_bos=*/true);
    std::vector<ChatMessage> msgs = p.messages;
    ChatMessage a;
    a.role = "assistant";
    a.content = reply;
    msgs.push_back(std::move(a));
    ChatFormatOptions fo;
    fo.add_generation_prompt = false;
    return encode_llama31_chat(tok, msgs, fo);
  }

  // False when the prompt was refused (reported as a bad line).
  bool submit_policy(const std::shared_ptr<Item>& item) {
    const int k = o_.samples;
    item->seed = rs_prompt_seed(o_.seed, item->p.key);
    item->cands.resize(size_t(k));
    item->scores_open = -1;
    const std::vector<int32_t> ids = policy_prompt(item->p);
    item->prompt_tokens = int(ids.size());
    const int requests = o_.share_prompt ? 1 : k;
    {
      std::lock_guard<std::mutex> l(mu_);
      item->policy_open = requests;
    }
    for (int r = 0; r < requests; ++r) {
      Request req;
      req.id = std::string("rs-").append(std::to_string(serial_++));
      req.prompt_ids = ids;
      req.params.n = o_.share_prompt ? k : 1;
      req.params.temperature = o_.temperature;
      req.params.top_p = o_.top_p;
      req.params.max_tokens = o_.max_tokens;
      // Unshared: each request is sample r of the prompt, with its own seed.
      req.params.seed =
          o_.share_prompt ? item->seed : rs_prompt_seed(item->seed, std::to_string(r));
      const int base = o_.share_prompt ? 0 : r;
      try {
        policy_.add_request(std::move(req), [this, item, base](const Output& o) {
          std::lock_guard<std::mutex> l(mu_);
          const size_t i = size_t(base + o.index);
          if (i < item->cands.size()) {
            Candidate& c = item->cands[i];
            c.text += o.text;
            c.tokens += int(o.token_ids.size());
            if (o.finish_reason != FinishReason::kNone)
              c.finish = finish_reason_name(o.finish_reason);
          }
          if (!o.error.empty() && item->error.empty()) item->error = o.error;
          if (o.request_finished && --item->policy_open == 0) {
            if (item->error.empty())
              for (const Candidate& c : item->cands)
                if (c.finish == "abort") item->error = "the policy request was aborted";
            push_locked(item);
          }
        });
      } catch (const InvalidArgument& e) {
        if (r > 0) throw;  // the same request was accepted a moment ago: not an input problem
        std::lock_guard<std::mutex> l(mu_);
        bad_line(item->p.line_no,
                 e.param().empty() ? std::string(e.what()) : e.param() + ": " + e.what());
        return false;
      }
    }
    return true;
  }

  void submit_scores(const std::shared_ptr<Item>& item) {
    const int k = int(item->cands.size());
    {
      std::lock_guard<std::mutex> l(mu_);
      item->scores_open = k;
      if (reward_open_++ == 0) reward_since_ = Clock::now();
      reward_open_ += k - 1;
    }
    for (int i = 0; i < k; ++i) {
      std::vector<int32_t> ids = reward_input(item->p, item->cands[size_t(i)].text);
      {
        std::lock_guard<std::mutex> l(mu_);
        item->reward_tokens += int(ids.size());
      }
      auto done = [this, item, i](std::vector<float> scores, std::string error) {
        std::lock_guard<std::mutex> l(mu_);
        item->cands[size_t(i)].scores = std::move(scores);
        if (!error.empty() && item->error.empty()) item->error = "reward: " + error;
        if (--reward_open_ == 0)
          reward_busy_s_ += std::chrono::duration<double>(Clock::now() - reward_since_).count();
        if (--item->scores_open == 0) push_locked(item);
      };
      try {
        reward_.score(std::string("rs-").append(std::to_string(serial_++)), std::move(ids), done);
      } catch (const std::exception& e) {
        done({}, e.what());
      }
    }
  }

  void push_locked(const std::shared_ptr<Item>& item) {
    ready_.push_back(item);
    cv_.notify_all();
  }

  json record(const Item& it) const {
    size_t best = 0;
    for (size_t i = 1; i < it.cands.size(); ++i)
      if (it.cands[i].scores.at(0) > it.cands[best].scores.at(0)) best = i;
    json cands = json::array(), rejected = json::array();
    int completion = 0;
    for (size_t i = 0; i < it.cands.size(); ++i) {
      const Candidate& c = it.cands[i];
      json e;
      e["index"] = i;
      e["text"] = c.text;
      e["completion_tokens"] = c.tokens;
      e["finish_reason"] = c.finish;
      e["score"] = c.scores.at(0);
      if (c.scores.size() > 1) e["scores"] = c.scores;
      e["status"] = i == best ? "chosen" : "rejected";
      cands.push_back(std::move(e));
      if (i != best) rejected.push_back(i);
      completion += c.tokens;
    }
    json r;
    r["id"] = it.p.id;
    r[it.p.is_chat ? "messages" : "prompt"] = it.p.input;
    if (!o_.system_prompt.empty()) r["system_prompt"] = o_.system_prompt;
    r["seed"] = it.seed;
    r["chosen_index"] = best;
    r["chosen"] = it.cands[best].text;
    r["chosen_score"] = it.cands[best].scores.at(0);
    r["rejected_indices"] = std::move(rejected);
    r["candidates"] = std::move(cands);
    r["usage"] = {{"prompt_tokens", it.prompt_tokens},
                  {"completion_tokens", completion},
                  {"reward_prompt_tokens", it.reward_tokens}};
    return r;
  }

  Engine& policy_;
  RewardScorer& reward_;
  const RsOptions& o_;
  FILE* log_;
  RsSummary summary_;
  std::atomic<uint64_t> serial_{0};
  std::mutex mu_;  // guards every Item in flight, ready_ and the reward timing
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Item>> ready_;
  int reward_open_ = 0;
  Clock::time_point reward_since_;
  double reward_busy_s_ = 0;
};

}  // namespace

RsSummary run_rejection_sampling(Engine& policy, RewardScorer& reward, const RsOptions& opts,
                                 FILE* log, bool interactive) {
  if (opts.samples < 1) throw InvalidArgument("samples", "--samples must be >= 1");
  if (opts.max_tokens < 1) throw InvalidArgument("max-tokens", "--max-tokens must be >= 1");
  Job job(policy, reward, opts, log);
  return job.run(interactive);
}

}  // namespace herd
