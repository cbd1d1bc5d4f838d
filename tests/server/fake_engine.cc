#include "tests/server/fake_engine.h"

#include <stdexcept>

#include "engine/common/error.h"
#include "engine/sample/validate.h"

namespace herd::testing {

namespace {
const std::vector<std::string>& specials() {
  static const std::vector<std::string> s = {
      "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
      "<|eot_id|>",        "<|eom_id|>",      "<|python_tag|>"};
  return s;
}
}  // namespace

std::vector<int32_t> FakeTokenizer::encode(std::string_view text, bool allow_special) const {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < text.size();) {
    bool matched = false;
    if (allow_special) {
      for (size_t k = 0; k < specials().size(); ++k) {
        if (text.substr(i, specials()[k].size()) == specials()[k]) {
          ids.push_back(256 + static_cast<int32_t>(k));
          i += specials()[k].size();
          matched = true;
          break;
        }
      }
    }
    if (!matched) ids.push_back(static_cast<unsigned char>(text[i++]));
  }
  return ids;
}

std::string FakeTokenizer::token_bytes(int32_t id) const {
  if (id >= 0 && id < 256) return std::string(1, static_cast<char>(id));
  if (id >= 256 && id < vocab_size()) return specials()[id - 256];
  return "";
}

std::string FakeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string s;
  for (int32_t id : ids) s += token_bytes(id);
  return s;
}

int32_t FakeTokenizer::vocab_size() const { return 256 + static_cast<int32_t>(specials().size()); }

std::optional<int32_t> FakeTokenizer::token_id(std::string_view t) const {
  for (size_t k = 0; k < specials().size(); ++k)
    if (specials()[k] == t) return 256 + static_cast<int32_t>(k);
  if (t.size() == 1) return static_cast<unsigned char>(t[0]);
  return std::nullopt;
}

std::vector<float> fake_scores(const std::vector<int32_t>& prompt, int num_labels) {
  int64_t sum = 0;
  for (int32_t t : prompt) sum += t;
  std::vector<float> s;
  for (int l = 0; l < num_labels; ++l) s.push_back(static_cast<float>(sum) / 100.0f + float(l));
  return s;
}

FakeEngine::FakeEngine(FakeEngineOptions opts) : opts_(std::move(opts)) {
  if (!opts_.reply)
    opts_.reply = [](const Request&, int i) {
      return "Hello from sample " + std::to_string(i) + "!";
    };
  config_.vocab_size = tok_.vocab_size();
  config_.max_position_embeddings = opts_.max_model_len;
  config_.num_labels = opts_.num_labels;
  for (int i = 0; i < opts_.num_labels; ++i)
    config_.id2label.push_back(std::string("LABEL_").append(std::to_string(i)));
  thread_ = std::thread([this] { loop(); });
}

FakeEngine::~FakeEngine() { shutdown(); }

void FakeEngine::add_request(Request req, OutputSink sink) {
  if (config_.is_reward_model()) {
    if (req.prompt_ids.empty()) throw InvalidArgument("prompt", "the prompt is empty");
    if (req.params.n != 1) throw InvalidArgument("n", "a score request has n = 1");
  } else {
    validate_sampling_params(req.params, tok_.vocab_size(), static_cast<int>(req.prompt_ids.size()),
                             opts_.max_model_len);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!unhealthy_reason_.empty()) throw EngineUnavailable(unhealthy_reason_);
  if (static_cast<int>(live_.size()) >= opts_.max_waiting) throw QueueFull("fake queue full");
  Live l;
  l.req = req;
  l.sink = std::move(sink);
  for (int i = 0; i < req.params.n; ++i) l.replies.push_back(opts_.reply(req, i));
  l.pos.assign(req.params.n, 0);
  l.done.assign(req.params.n, false);
  l.text.assign(req.params.n, "");
  prompt_tokens_ += static_cast<int64_t>(req.prompt_ids.size());
  received_.push_back(req);
  live_.emplace(req.id, std::move(l));
  cv_.notify_all();
}

void FakeEngine::abort(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(id);
  if (it == live_.end()) return;
  it->second.abort = true;
  aborted_.insert(id);
  cv_.notify_all();
}

std::vector<std::vector<Output>> FakeEngine::generate(std::vector<Request>) {
  throw std::logic_error("FakeEngine::generate is not used by the server");
}

EngineStats FakeEngine::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  EngineStats s;
  s.running = static_cast<int>(live_.size());
  s.prompt_tokens = prompt_tokens_;
  s.generation_tokens = generation_tokens_;
  s.num_blocks = 100;
  s.free_blocks = 100;
  s.healthy = unhealthy_reason_.empty();
  return s;
}

EngineHealth FakeEngine::health() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {unhealthy_reason_.empty(), unhealthy_reason_};
}

void FakeEngine::set_unhealthy(std::string reason) {
  std::lock_guard<std::mutex> lock(mu_);
  unhealthy_reason_ = std::move(reason);
}

void FakeEngine::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
    for (auto& [id, l] : live_) l.abort = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void FakeEngine::set_paused(bool paused) {
  std::lock_guard<std::mutex> lock(mu_);
  paused_ = paused;
  cv_.notify_all();
}

std::set<std::string> FakeEngine::aborted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return aborted_;
}

std::vector<Request> FakeEngine::received() const {
  std::lock_guard<std::mutex> lock(mu_);
  return received_;
}

size_t FakeEngine::live() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_.size();
}

void FakeEngine::set_reply(std::function<std::string(const Request&, int)> reply) {
  std::lock_guard<std::mutex> lock(mu_);
  opts_.reply = std::move(reply);
}

void FakeEngine::finish_sample(Live& l, int i, FinishReason r, const std::string& stop_reason) {
  l.done[i] = true;
  Output o;
  o.request_id = l.req.id;
  o.index = i;
  o.finish_reason = r;
  o.stop_reason = stop_reason;
  bool all = true;
  for (bool d : l.done) all = all && d;
  if (all) {
    o.request_finished = true;
    o.usage.prompt_tokens = static_cast<int>(l.req.prompt_ids.size());
    o.usage.completion_tokens = l.completion_tokens;
  }
  l.sink(o);
}

// One token for every unfinished sample of the request.
void FakeEngine::step(Live& l) {
  const SamplingParams& p = l.req.params;
  if (config_.is_reward_model()) {  // one delta: the scores, or the abort
    Output o;
    o.request_id = l.req.id;
    o.finish_reason = l.abort ? FinishReason::kAbort : FinishReason::kStop;
    if (!l.abort) o.scores = fake_scores(l.req.prompt_ids, config_.num_labels);
    o.request_finished = true;
    o.usage.prompt_tokens = static_cast<int>(l.req.prompt_ids.size());
    l.done.assign(1, true);
    l.sink(o);
    return;
  }
  for (int i = 0; i < p.n; ++i) {
    if (l.done[i]) continue;
    if (l.abort) {
      finish_sample(l, i, FinishReason::kAbort, "");
      continue;
    }
    const int generated = static_cast<int>(l.pos[i]);
    if (l.pos[i] >= l.replies[i].size()) {
      finish_sample(l, i, FinishReason::kStop, "");
      continue;
    }
    if (p.max_tokens && generated >= *p.max_tokens) {
      finish_sample(l, i, FinishReason::kLength, "");
      continue;
    }
    unsigned char byte = static_cast<unsigned char>(l.replies[i][l.pos[i]++]);
    l.text[i] += static_cast<char>(byte);
    ++l.completion_tokens;
    ++generation_tokens_;
    Output o;
    o.request_id = l.req.id;
    o.index = i;
    o.token_ids = {byte};
    o.text = std::string(1, static_cast<char>(byte));
    if (p.logprobs) {
      TokenLogprob lp{byte, -0.5f, {}};
      for (int k = 0; k < *p.logprobs; ++k)
        lp.top.emplace_back((byte + k) % 256, -0.5f - static_cast<float>(k));
      o.logprobs.push_back(lp);
    }
    std::string hit;
    for (const auto& s : p.stop)
      if (!s.empty() && l.text[i].size() >= s.size() &&
          l.text[i].compare(l.text[i].size() - s.size(), s.size(), s) == 0)
        hit = s;
    if (!hit.empty()) o.text.clear();  // stop strings are never emitted (tests use one byte)
    l.sink(o);
    if (!hit.empty()) finish_sample(l, i, FinishReason::kStop, hit);
  }
}

void FakeEngine::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] {
      if (stop_ && live_.empty()) return true;
      if (live_.empty()) return stop_;
      if (!paused_ || stop_) return true;
      for (auto& [id, l] : live_)
        if (l.abort) return true;
      return false;
    });
    if (stop_ && live_.empty()) return;
    for (auto it = live_.begin(); it != live_.end();) {
      if (!paused_ || it->second.abort || stop_) step(it->second);
      bool all = true;
      for (bool d : it->second.done) all = all && d;
      it = all ? live_.erase(it) : std::next(it);
    }
    lock.unlock();
    std::this_thread::sleep_for(opts_.token_delay);
    lock.lock();
  }
}

}  // namespace herd::testing
