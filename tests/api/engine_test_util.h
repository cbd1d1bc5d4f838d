// Shared helpers of the engine tests: a seeded tiny checkpoint written once per process, an
// engine over it with a KV pool of an exact number of blocks, greedy/seeded requests, and a
// collector of one request's streamed deltas.
#pragma once

#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/api/engine.h"
#include "engine/api/llm_engine.h"
#include "engine/model/llama.h"
#include "engine/model/make_model.h"
#include "tests/model/checkpoint_test_util.h"
#include "tests/model/tiny_model.h"

namespace herd::testing {

// Options whose KV pool holds exactly `num_blocks` blocks of the tiny model (weights of
// `dtype`: BF16 runs the CPU backend's packed BF16 GEMM where the CPU has one).
inline EngineOptions tiny_engine_options(int num_blocks = 512, int block_size = 16,
                                         DType dtype = DType::kF32) {
  EngineOptions o;
  o.model_dir = tiny_model_dir("tiny", dtype);
  o.threads = 2;
  o.block_size = block_size;
  const ModelConfig cfg = load_model_config(o.model_dir);
  const double per_block = double(KvCache::bytes_per_block(cfg, block_size, DType::kF32));
  o.kv_cache_gb = (num_blocks + 0.5) * per_block / (1024.0 * 1024.0 * 1024.0);
  o.max_num_seqs = 64;
  o.max_num_batched_tokens = 256;
  return o;
}

inline std::unique_ptr<LlmEngine> make_test_engine(const EngineOptions& o) {
  auto e = Engine::create(o);
  auto* raw = dynamic_cast<LlmEngine*>(e.release());
  raw->set_check_invariants(true);
  return std::unique_ptr<LlmEngine>(raw);
}

// A deterministic prompt of `len` ids in [0, 256) (byte tokens of the built-in tokenizer).
inline std::vector<int32_t> test_prompt(int len, int salt) {
  std::vector<int32_t> p;
  for (int i = 0; i < len; ++i) p.push_back(int32_t((i * 37 + salt * 101 + 13) % 251));
  return p;
}

inline Request greedy_request(std::string id, std::vector<int32_t> prompt, int max_tokens) {
  Request r;
  r.id = std::move(id);
  r.prompt_ids = std::move(prompt);
  r.params.temperature = 0.0;
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  return r;
}

inline Request seeded_request(std::string id, std::vector<int32_t> prompt, int max_tokens,
                              uint64_t seed, int n = 1) {
  Request r = greedy_request(std::move(id), std::move(prompt), max_tokens);
  r.params.temperature = 0.9;
  r.params.top_p = 0.95;
  r.params.seed = seed;
  r.params.n = n;
  return r;
}

// Collects every delta of one request.
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Output> deltas;
  bool done = false;
  std::function<void(const Output&)> on_final;  // called (engine thread) on the final delta
  OutputSink sink() {
    return [this](const Output& o) {
      {
        std::lock_guard<std::mutex> l(mu);
        deltas.push_back(o);
      }
      if (o.request_finished && on_final) on_final(o);
      std::lock_guard<std::mutex> l(mu);
      if (o.request_finished) done = true;
      cv.notify_all();
    };
  }
  void wait() {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return done; });
  }
  std::vector<int32_t> tokens() {
    std::lock_guard<std::mutex> l(mu);
    std::vector<int32_t> t;
    for (const Output& o : deltas) t.insert(t.end(), o.token_ids.begin(), o.token_ids.end());
    return t;
  }
  const Output& last() { return deltas.back(); }
};

}  // namespace herd::testing
