// herd rs: rejection sampling (engine/jobs/rejection_sampling.h). The policy and the reward
// model run in this process as two engines with the KV budget split between them (said on
// stderr), or the reward model behind --reward-url (another `herd serve` of it: POST
// /pooling; --reward DIR then only provides its tokenizer). Reserve admission with the max
// output length and n = K prompt sharing are the defaults, as in the Llama 2 paper.
//
// `--policy` names the policy model here, so the engine flag `--policy reserve|optimistic` is
// spelled `--admission` for this command.
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "cli/command.h"
#include "cli/engine_flags.h"
#include "engine/common/error.h"
#include "engine/jobs/rejection_sampling.h"
#include "engine/model/config.h"
#include "engine/tokenizer/tokenizer.h"

#ifdef HERD_HAVE_BENCH_CLIENT
#include <httplib.h>
#endif

namespace herd::cli {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

const std::set<std::string>& rs_value_flags() {
  static const std::set<std::string> s = {"policy",
                                          "reward",
                                          "prompts",
                                          "samples",
                                          "output",
                                          "system-prompt",
                                          "max-tokens",
                                          "temperature",
                                          "top-p",
                                          "seed",
                                          "reward-url",
                                          "reward-api-key",
                                          "admission",
                                          "reward-kv-fraction",
                                          "prompts-in-flight"};
  return s;
}
const std::set<std::string>& rs_switches() {
  static const std::set<std::string> s = {"no-sharing", "fsync"};
  return s;
}

#ifdef HERD_HAVE_BENCH_CLIENT
// The reward model of another herd server: POST URL/pooling {"input": [ids]} from a few
// worker threads (score() only queues, as a sink-safe call must).
class UrlScorer final : public RewardScorer {
 public:
  UrlScorer(std::string url, std::string api_key, std::unique_ptr<Tokenizer> tok, int workers)
      : url_(std::move(url)), api_key_(std::move(api_key)), tok_(std::move(tok)) {
    while (!url_.empty() && url_.back() == '/') url_.pop_back();
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
  }
  ~UrlScorer() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void score(const std::string&, std::vector<int32_t> ids, Done done) override {
    std::lock_guard<std::mutex> l(mu_);
    queue_.emplace_back(std::move(ids), std::move(done));
    cv_.notify_one();
  }
  const Tokenizer& tokenizer() const override { return *tok_; }

 private:
  void work() {
    httplib::Client client(url_);
    client.set_read_timeout(600, 0);
    if (!api_key_.empty()) client.set_bearer_token_auth(api_key_);  // a server run with --api-key
    for (;;) {
      std::pair<std::vector<int32_t>, Done> job;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      const nlohmann::json body = {{"input", job.first}};
      auto res = client.Post("/pooling", body.dump(), "application/json");
      if (!res) {
        job.second({}, url_ + "/pooling: " + httplib::to_string(res.error()));
        continue;
      }
      try {
        const auto j = nlohmann::json::parse(res->body);
        if (res->status != 200) {
          job.second({}, url_ + "/pooling: HTTP " + std::to_string(res->status) + ": " +
                             j.value("error", nlohmann::json::object()).value("message", ""));
          continue;
        }
        job.second(j.at("data").at(0).at("data").get<std::vector<float>>(), "");
      } catch (const std::exception& e) {
        job.second({}, url_ + "/pooling: bad reply: " + e.what());
      }
    }
  }

  std::string url_;
  std::string api_key_;
  std::unique_ptr<Tokenizer> tok_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::vector<int32_t>, Done>> queue_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};
#endif

// The key of a reward server run with --api-key: the flag, else HERD_REWARD_API_KEY (kept out
// of the process list), else none.
[[maybe_unused]] std::string reward_api_key(const Flags& f) {
  if (f.has("reward-api-key")) {
    std::string k = f.str("reward-api-key", "");
    if (k.empty()) throw InvalidArgument("reward-api-key", "flag --reward-api-key is empty");
    return k;
  }
  const char* env = std::getenv("HERD_REWARD_API_KEY");
  return env ? std::string(env) : std::string();
}

std::string read_text_or_file(const std::string& v) {
  if (v.empty() || v[0] != '@') return v;
  std::ifstream in(v.substr(1), std::ios::binary);
  if (!in) throw InvalidArgument("system-prompt", v.substr(1) + ": cannot open file");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

int run_rs(const std::vector<std::string>& args) {
  // Split the arguments: rs's own flags, and engine flags for both engines (with --policy DIR
  // as the engine's --model and --admission as its --policy).
  for (const std::string& a : args)
    if (is_help_flag(a)) throw HelpRequested{};
  std::vector<std::string> own, engine_args;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const std::string name = a.rfind("--", 0) == 0 ? a.substr(2) : "";
    if (rs_value_flags().count(name) && i + 1 < args.size()) {
      own.push_back(a);
      own.push_back(args[++i]);
    } else if (rs_switches().count(name)) {
      own.push_back(a);
    } else if (name == "model") {
      throw InvalidArgument("model", "herd rs takes --policy DIR and --reward DIR, not --model");
    } else {
      engine_args.push_back(a);
    }
  }
  Flags f(own, rs_value_flags(), rs_switches());
  const std::string policy_dir = f.required("policy");
  const std::string reward_dir = f.required("reward");
  engine_args.insert(engine_args.end(),
                     {"--model", policy_dir, "--policy", f.str("admission", "reserve")});
  Flags ef(engine_args, engine_value_flags(), engine_switches());
  EngineOptions popts = engine_options_from_flags(ef);

  RsOptions o;
  o.prompts_path = f.required("prompts");
  o.output_path = f.required("output");
  o.samples = int(f.i64("samples", 4));
  o.max_tokens = int(f.i64("max-tokens", 256));
  o.temperature = f.f64("temperature", 1.0);
  o.top_p = f.f64("top-p", 1.0);
  o.seed = uint64_t(f.i64("seed", 0));
  o.system_prompt = read_text_or_file(f.str("system-prompt", ""));
  o.share_prompt = !f.has("no-sharing");
  o.fsync = f.has("fsync");
  if (o.samples < 1 || o.samples > popts.max_num_seqs)
    throw InvalidArgument("samples", "--samples must be in [1, --max-num-seqs]");
  o.prompts_in_flight =
      int(f.i64("prompts-in-flight", std::max(1, 2 * popts.max_num_seqs / o.samples)));
  if (o.prompts_in_flight < 1)
    throw InvalidArgument("prompts-in-flight", "--prompts-in-flight must be >= 1");
  const std::string url = f.str("reward-url", "");

  // The KV budget: one pool size for the whole job, split between the two engines.
  const double frac = url.empty() ? f.f64("reward-kv-fraction", 0.25) : 0.0;
  if (url.empty() && f.has("reward-api-key"))
    throw InvalidArgument("reward-api-key", "--reward-api-key needs --reward-url");
  if (!url.empty() && f.has("reward-kv-fraction"))
    throw InvalidArgument("reward-kv-fraction", "--reward-kv-fraction needs no --reward-url");
  if (url.empty() && !(frac > 0.0 && frac < 1.0))
    throw InvalidArgument("reward-kv-fraction", "--reward-kv-fraction must be in (0, 1)");
  EngineOptions ropts = popts;
  ropts.model_dir = reward_dir;
  // The engine flags are the policy's; the reward engine always shares prompt pages through its
  // prefix cache (the K conversations of a prompt start alike), so --no-prefix-caching, a
  // benchmark switch, changes only the policy side.
  ropts.enable_prefix_caching = true;
  if (popts.kv_blocks_override > 0) {
    ropts.kv_blocks_override =
        std::max<int64_t>(1, int64_t(double(popts.kv_blocks_override) * frac));
    popts.kv_blocks_override -= ropts.kv_blocks_override;
  } else {
    ropts.kv_cache_gb = popts.kv_cache_gb * frac;
    popts.kv_cache_gb -= ropts.kv_cache_gb;
  }

  auto policy = Engine::create(popts);
  std::unique_ptr<Engine> reward_engine;
  std::unique_ptr<RewardScorer> scorer;
  const EngineStats ps = policy->stats();
  if (url.empty()) {
    reward_engine = Engine::create(ropts);
    scorer = std::make_unique<EngineScorer>(*reward_engine);
    const EngineStats rs = reward_engine->stats();
    std::fprintf(stderr,
                 "[herd rs] KV budget split: policy %.3f GiB (%lld blocks), reward %.3f GiB "
                 "(%lld blocks) = %.0f%%\n",
                 popts.kv_blocks_override > 0 ? 0.0 : popts.kv_cache_gb, (long long)ps.num_blocks,
                 ropts.kv_blocks_override > 0 ? 0.0 : ropts.kv_cache_gb, (long long)rs.num_blocks,
                 100.0 * frac);
  } else {
#ifdef HERD_HAVE_BENCH_CLIENT
    const ModelConfig rc = load_model_config(reward_dir);
    if (!rc.is_reward_model())
      throw InvalidArgument("reward", reward_dir + " is not a reward model");
    scorer = std::make_unique<UrlScorer>(url, reward_api_key(f), load_tokenizer(reward_dir), 4);
    std::fprintf(stderr, "[herd rs] reward model at %s; policy KV %lld blocks\n", url.c_str(),
                 (long long)ps.num_blocks);
#else
    throw InvalidArgument("reward-url", "this build has no HTTP client (cpp-httplib)");
#endif
  }
  std::fprintf(stderr,
               "[herd rs] K = %d samples per prompt, max_tokens %d, admission %s, prompt "
               "sharing %s, %d prompts in flight\n",
               o.samples, o.max_tokens,
               popts.policy == AdmissionPolicy::kReserve ? "reserve" : "optimistic",
               o.share_prompt ? "on" : "off", o.prompts_in_flight);

  const RsSummary s =
      run_rejection_sampling(*policy, *scorer, o, stderr, isatty(fileno(stderr)) != 0);
  policy->shutdown();
  if (reward_engine) reward_engine->shutdown();
  nlohmann::json j = s.json();
  j["policy_stats"] = {{"preemptions", policy->stats().preemptions},
                       {"prefix_hits_tokens", policy->stats().prefix_hits_tokens}};
  std::printf("%s\n", j.dump().c_str());
  return s.failed > 0 ? 1 : 0;
}

HERD_COMMAND("rs",
             "--policy DIR --reward DIR --prompts FILE.jsonl --output FILE.jsonl [--samples K] "
             "[--system-prompt TEXT|@FILE] [--max-tokens N] [--temperature T] [--top-p P] "
             "[--seed S] [--reward-url URL [--reward-api-key KEY | env HERD_REWARD_API_KEY]] "
             "[--admission reserve|optimistic] [--no-sharing] "
             "[--reward-kv-fraction F] [--prompts-in-flight N] [--fsync] [engine flags]",
             run_rs);

}  // namespace
}  // namespace herd::cli
