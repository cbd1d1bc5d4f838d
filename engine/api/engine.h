// Engine: the only interface the server, jobs and CLI use. Thread-safe: any thread may add or
// abort requests; a step loop on the engine's own thread schedules, runs the model and calls
// each request's sink with Output deltas (from the engine thread: sinks must not block).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/api/types.h"

namespace herd {

class Tokenizer;
struct ModelConfig;

using OutputSink = std::function<void(const Output&)>;

enum class AdmissionPolicy { kReserve, kOptimistic };

struct EngineOptions {
  std::string model_dir;
  std::string device = "cpu";        // cpu | cuda | auto
  int threads = 0;                   // CPU backend threads (0 = all)
  double kv_cache_gb = 1.0;          // CPU KV pool size
  int block_size = 16;
  int max_num_seqs = 256;
  int max_num_batched_tokens = 2048;
  int max_model_len = 0;             // 0 = model's max_position_embeddings
  bool enable_prefix_caching = true;
  bool enable_chunked_prefill = true;
  AdmissionPolicy policy = AdmissionPolicy::kOptimistic;
  int max_waiting = 1024;            // beyond it add_request throws QueueFull
  // Per-server salt of prefix-cache keys. Unset (default): 32 random bytes per process, so keys
  // are unguessable; set (`--prefix-cache-salt`) only to make them reproducible.
  std::optional<std::string> cache_salt;
};

struct EngineStats {
  int running = 0;
  int waiting = 0;
  double kv_usage = 0.0;             // fraction of blocks owned by live sequences
  int64_t num_blocks = 0;
  int64_t free_blocks = 0;           // free or cached (evictable)
  int64_t prefix_queries_tokens = 0;
  int64_t prefix_hits_tokens = 0;
  int64_t preemptions = 0;
  int64_t prompt_tokens = 0;
  int64_t generation_tokens = 0;
  int64_t steps = 0;
};

class QueueFull : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Engine {
 public:
  virtual ~Engine() = default;
  static std::unique_ptr<Engine> create(const EngineOptions& opts);

  // Validates (herd::InvalidArgument naming the param on bad input), then queues. Throws
  // QueueFull when max_waiting requests already wait.
  virtual void add_request(Request req, OutputSink sink) = 0;
  // Aborts a queued or running request at any moment; the engine thread frees its blocks at the
  // start of its next step (before handing out any new block), and its sink gets a final
  // kAbort delta. Unknown ids are ignored.
  virtual void abort(const std::string& request_id) = 0;
  // Offline: runs all requests to completion; result[i] holds request i's samples' full text.
  virtual std::vector<std::vector<Output>> generate(std::vector<Request> reqs) = 0;

  virtual const Tokenizer& tokenizer() const = 0;
  virtual const ModelConfig& model_config() const = 0;
  virtual int max_model_len() const = 0;
  virtual EngineStats stats() const = 0;
  // Stops the step loop; pending requests are aborted.
  virtual void shutdown() = 0;
};

}  // namespace herd
