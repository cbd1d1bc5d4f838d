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
#include "engine/parallel/layout.h"

namespace herd {

class Tokenizer;
struct ModelConfig;

using OutputSink = std::function<void(const Output&)>;

enum class AdmissionPolicy { kReserve, kOptimistic };

struct EngineOptions {
  std::string model_dir;
  std::string device = "cpu";  // cpu | cuda | auto
  int threads = 0;             // CPU backend threads (0 = all)
  double kv_cache_gb = 1.0;    // CPU KV pool size
  // When > 0: exactly this many KV blocks, whatever kv_cache_gb says (vLLM's
  // num_gpu_blocks_override): tests compare engines of different layouts on equal pools.
  int64_t kv_blocks_override = 0;
  int block_size = 16;
  int max_num_seqs = 256;
  int max_num_batched_tokens = 2048;
  int max_model_len = 0;  // 0 = model's max_position_embeddings
  bool enable_prefix_caching = true;
  bool enable_chunked_prefill = true;
  AdmissionPolicy policy = AdmissionPolicy::kOptimistic;
  int max_waiting = 1024;  // beyond it add_request throws QueueFull
  // Per-server salt of prefix-cache keys. Unset (default): 32 random bytes per process, so keys
  // are unguessable; set (`--prefix-cache-salt`) only to make them reproducible.
  std::optional<std::string> cache_salt;
  // With chunked prefill: the most prompt (or recompute) tokens one sequence runs per step, so
  // a long prompt never holds a whole step (vLLM's long_prefill_token_threshold). -1 = auto:
  // max(64, max_num_batched_tokens / 8); 0 = no cap.
  int long_prefill_token_threshold = -1;
  // Test hook (fault injection): when >= 0, every step after this many steps throws before
  // the forward as a device fault would, making the engine unhealthy. `herd serve` sets it
  // from the environment variable HERD_TEST_FAIL_STEP_AFTER. Never set it in production.
  int64_t test_fail_step_after = -1;
  // Tensor x pipeline parallelism over the ranks of an MPI job (mpirun -np T*P); micro_batches
  // = plans in flight (0 = one per pipeline stage; > 1 in one process overlaps scheduling
  // with the forward). See engine/exec/rank_executor.h.
  ParallelConfig parallel;
  // A rank that does not answer within this time ends the job with an error (engine/parallel).
  int64_t comm_timeout_ms = 60000;
  // "fp8": quantize the feed-forward layers row-wise to FP8 at load (issue 11; first and last
  // layers kept, activation cap 1200). "" : the weights as stored (an fbgemm_fp8 checkpoint
  // runs FP8 by itself).
  std::string quantization;
};

struct EngineStats {
  int running = 0;
  int waiting = 0;
  double kv_usage = 0.0;  // fraction of blocks owned by live sequences
  int64_t num_blocks = 0;
  int64_t free_blocks = 0;  // free or cached (evictable)
  int64_t prefix_queries_tokens = 0;
  int64_t prefix_hits_tokens = 0;
  int64_t preemptions = 0;
  int64_t prompt_tokens = 0;
  int64_t generation_tokens = 0;
  int64_t steps = 0;
  // Requests failed because a logits row held a NaN or an infinity (each counted once).
  int64_t nonfinite_logit_errors = 0;
  bool healthy = true;  // false once a step failed (see Engine::health)
};

// Engine::health(): false once a step failed on the backend (an exception from the forward,
// e.g. a CUDA error, or broken engine state). An unhealthy engine stays so: it has failed every
// live request with an error and refuses new ones (EngineUnavailable); the process should
// drain its front ends and exit non-zero so that an orchestrator restarts it.
struct EngineHealth {
  bool healthy = true;
  std::string reason;  // why not healthy ("" when healthy)
};

class QueueFull : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// add_request (and generate) on an unhealthy engine: the server answers 503.
class EngineUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Engine {
 public:
  virtual ~Engine() = default;
  static std::unique_ptr<Engine> create(const EngineOptions& opts);

  // Validates (herd::InvalidArgument naming the param on bad input), then queues. Throws
  // QueueFull when max_waiting requests already wait (or the engine is shutting down), and
  // EngineUnavailable when the engine is unhealthy. Request ids are unique per engine among
  // live requests: an id that is queued, running or not yet retired (its final delta, with
  // request_finished, not yet built) is rejected with InvalidArgument("request_id"). An id
  // may be reused as soon as its final delta is delivered (also from inside that sink call).
  virtual void add_request(Request req, OutputSink sink) = 0;
  // Aborts a queued or running request at any moment; the engine thread frees its blocks at the
  // start of its next step (before handing out any new block), and its sink gets a final
  // kAbort delta. An id with no live request when abort() is called is ignored (even if a
  // request with that id is added before the next step). The abort is bound to the request live
  // under that id when abort() is called: if that request finishes first and a new request reuses
  // the id before the abort lands, the new request is not touched.
  virtual void abort(const std::string& request_id) = 0;
  // Offline: runs all requests to completion; result[i] holds request i's samples' full text.
  virtual std::vector<std::vector<Output>> generate(std::vector<Request> reqs) = 0;

  virtual const Tokenizer& tokenizer() const = 0;
  virtual const ModelConfig& model_config() const = 0;
  virtual int max_model_len() const = 0;
  virtual EngineStats stats() const = 0;
  // Healthy until a step fails on the backend; see EngineHealth.
  virtual EngineHealth health() const { return {}; }
  // Stops the step loop; pending requests are aborted.
  virtual void shutdown() = 0;
};

}  // namespace herd
