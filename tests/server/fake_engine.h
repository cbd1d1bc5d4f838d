// Test doubles for the server tests: a byte-level FakeTokenizer (ids 0..255 are bytes, then a
// few Llama 3 special tokens) and a FakeEngine that streams a scripted reply one byte-token at
// a time from its own thread, honours max_tokens, stop strings, n, logprobs, abort and
// max_waiting (QueueFull), and validates requests with the real engine/sample validator.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/api/engine.h"
#include "engine/model/config.h"
#include "engine/tokenizer/tokenizer.h"

namespace herd::testing {

class FakeTokenizer : public Tokenizer {
 public:
  static constexpr int32_t kBos = 256;
  static constexpr int32_t kEot = 260;
  std::vector<int32_t> encode(std::string_view text, bool allow_special = false) const override;
  std::string token_bytes(int32_t id) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int32_t vocab_size() const override;
  std::optional<int32_t> token_id(std::string_view token_text) const override;
  bool is_special(int32_t id) const override { return id >= 256; }
  int32_t bos_id() const override { return kBos; }
  int32_t eos_id() const override { return kEot; }
  bool adds_bos() const override { return false; }
};

struct FakeEngineOptions {
  int max_model_len = 4096;
  int max_waiting = 1000;                      // live requests beyond it: QueueFull
  std::chrono::microseconds token_delay{200};  // between steps
  // The reply of sample `index`; default "Hello from sample <index>!".
  std::function<std::string(const Request&, int index)> reply;
  // > 0: a reward model with this many labels: each request gets one delta with
  // fake_scores(prompt) (no tokens), as the real engine's score requests.
  int num_labels = 0;
};

// The fake reward model's scores: label l of a prompt is (sum of its ids) / 100 + l.
std::vector<float> fake_scores(const std::vector<int32_t>& prompt, int num_labels);

class FakeEngine : public Engine {
 public:
  explicit FakeEngine(FakeEngineOptions opts = {});
  ~FakeEngine() override;

  void add_request(Request req, OutputSink sink) override;
  void abort(const std::string& request_id) override;
  std::vector<std::vector<Output>> generate(std::vector<Request> reqs) override;
  const Tokenizer& tokenizer() const override { return tok_; }
  const ModelConfig& model_config() const override { return config_; }
  int max_model_len() const override { return opts_.max_model_len; }
  EngineStats stats() const override;
  EngineHealth health() const override;
  void shutdown() override;

  // Test hooks.
  void set_paused(bool paused);           // paused: no tokens are produced
  std::set<std::string> aborted() const;  // ids abort() was called with while live
  std::vector<Request> received() const;  // every accepted request, in order
  size_t live() const;
  void set_reply(std::function<std::string(const Request&, int)> reply);
  // As after a failed step of the real engine: health() says why, add_request throws
  // EngineUnavailable.
  void set_unhealthy(std::string reason);

 private:
  struct Live {
    Request req;
    OutputSink sink;
    std::vector<std::string> replies;
    std::vector<size_t> pos;
    std::vector<bool> done;
    std::vector<std::string> text;  // emitted so far (stop-string matching)
    int completion_tokens = 0;
    bool abort = false;
  };
  void loop();
  void step(Live& l);
  void finish_sample(Live& l, int i, FinishReason r, const std::string& stop_reason);

  FakeEngineOptions opts_;
  FakeTokenizer tok_;
  ModelConfig config_;
  mutable std::mutex mu_;
  std::string unhealthy_reason_;  // non-empty: unhealthy
  std::condition_variable cv_;
  std::map<std::string, Live> live_;
  std::set<std::string> aborted_;
  std::vector<Request> received_;
  bool paused_ = false;
  bool stop_ = false;
  int64_t prompt_tokens_ = 0, generation_tokens_ = 0;
  std::thread thread_;
};

}  // namespace herd::testing
