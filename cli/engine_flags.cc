#include "cli/engine_flags.h"

#include "engine/common/error.h"

namespace herd::cli {

const std::set<std::string>& engine_value_flags() {
  static const std::set<std::string> s = {"model",
                                          "device",
                                          "threads",
                                          "kv-cache-gb",
                                          "block-size",
                                          "max-num-seqs",
                                          "max-num-batched-tokens",
                                          "max-model-len",
                                          "policy",
                                          "max-waiting",
                                          "prefix-cache-salt",
                                          "long-prefill-token-threshold",
                                          "tensor-parallel-size",
                                          "pipeline-parallel-size",
                                          "micro-batches",
                                          "comm-timeout",
                                          "quantization"};
  return s;
}

const std::set<std::string>& engine_switches() {
  static const std::set<std::string> s = {"no-prefix-caching", "no-chunked-prefill"};
  return s;
}

const char* engine_flags_usage() {
  return "--model DIR [--device cpu|cuda|auto] [--threads N] [--kv-cache-gb GB] "
         "[--block-size N] [--max-num-seqs N] [--max-num-batched-tokens N] [--max-model-len N] "
         "[--policy reserve|optimistic] [--max-waiting N] [--no-prefix-caching] "
         "[--no-chunked-prefill] [--prefix-cache-salt STR (default: random per process)] "
         "[--tensor-parallel-size|-tp T] [--pipeline-parallel-size|-pp P] [--micro-batches M] "
         "[--comm-timeout SECONDS] (T*P > 1: run under mpirun -np T*P) "
         "[--quantization fp8|none (row-wise FP8 feed-forward, quantized at load)]";
}

std::set<std::string> with_engine_value_flags(std::set<std::string> own) {
  own.insert(engine_value_flags().begin(), engine_value_flags().end());
  return own;
}

std::set<std::string> with_engine_switches(std::set<std::string> own) {
  own.insert(engine_switches().begin(), engine_switches().end());
  return own;
}

EngineOptions engine_options_from_flags(const Flags& f) {
  EngineOptions o;
  o.model_dir = f.required("model");
  o.device = f.str("device", o.device);
  o.threads = int(f.i64("threads", o.threads));
  o.kv_cache_gb = f.f64("kv-cache-gb", o.kv_cache_gb);
  o.block_size = int(f.i64("block-size", o.block_size));
  o.max_num_seqs = int(f.i64("max-num-seqs", o.max_num_seqs));
  o.max_num_batched_tokens = int(f.i64("max-num-batched-tokens", o.max_num_batched_tokens));
  o.max_model_len = int(f.i64("max-model-len", o.max_model_len));
  o.max_waiting = int(f.i64("max-waiting", o.max_waiting));
  o.long_prefill_token_threshold =
      int(f.i64("long-prefill-token-threshold", o.long_prefill_token_threshold));
  const std::string policy = f.str("policy", "optimistic");
  if (policy == "reserve")
    o.policy = AdmissionPolicy::kReserve;
  else if (policy == "optimistic")
    o.policy = AdmissionPolicy::kOptimistic;
  else
    throw InvalidArgument("policy", "--policy must be reserve or optimistic, got '" + policy + "'");
  o.enable_prefix_caching = !f.has("no-prefix-caching");
  o.enable_chunked_prefill = !f.has("no-chunked-prefill");
  if (f.has("prefix-cache-salt")) o.cache_salt = f.str("prefix-cache-salt", "");
  if (o.kv_cache_gb <= 0) throw InvalidArgument("kv-cache-gb", "--kv-cache-gb must be > 0");
  if (o.block_size < 1 || o.block_size > 1024)
    throw InvalidArgument("block-size", "--block-size must be in [1, 1024]");
  if (o.max_num_seqs < 1) throw InvalidArgument("max-num-seqs", "--max-num-seqs must be >= 1");
  if (o.max_num_batched_tokens < 1)
    throw InvalidArgument("max-num-batched-tokens", "--max-num-batched-tokens must be >= 1");
  if (o.max_model_len < 0) throw InvalidArgument("max-model-len", "--max-model-len must be >= 0");
  if (o.long_prefill_token_threshold < -1)
    throw InvalidArgument("long-prefill-token-threshold",
                          "--long-prefill-token-threshold must be -1 (auto), 0 (off) or > 0");
  parallel_options_from_flags(f, o);
  quantization_from_flags(f, o);
  return o;
}

void parallel_options_from_flags(const Flags& f, EngineOptions& o) {
  auto size = [&](const char* name, int def, int lo) {
    const int64_t v = f.i64(name, def);
    if (v < lo || v > 4096)
      throw InvalidArgument(
          name, std::string("--") + name + " must be in [" + std::to_string(lo) + ", 4096]");
    return int(v);
  };
  o.parallel.tensor_parallel_size = size("tensor-parallel-size", 1, 1);
  o.parallel.pipeline_parallel_size = size("pipeline-parallel-size", 1, 1);
  o.parallel.micro_batches = size("micro-batches", 0, 0);
  const double timeout = f.f64("comm-timeout", double(o.comm_timeout_ms) / 1000.0);
  if (!(timeout > 0 && timeout <= 86400))
    throw InvalidArgument("comm-timeout", "--comm-timeout must be in (0, 86400] seconds");
  o.comm_timeout_ms = int64_t(timeout * 1000.0);
}

void quantization_from_flags(const Flags& f, EngineOptions& o) {
  o.quantization = f.str("quantization", "");
  if (o.quantization == "none") o.quantization.clear();
  if (!o.quantization.empty() && o.quantization != "fp8")
    throw InvalidArgument("quantization",
                          "--quantization must be fp8 or none, got '" + o.quantization + "'");
}

}  // namespace herd::cli
