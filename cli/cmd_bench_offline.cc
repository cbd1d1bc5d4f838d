// herd bench offline: offline throughput of the engine (issue #3).
//   --workload throughput  64 prompts x 256 tokens, 64 new tokens each (one batch job).
//   --workload rs          rejection sampling: 8 prompts x 512 tokens, n = 16 samples, 64 new
//                          tokens, on a KV pool too small to hold every sample at once. Runs
//                          four configurations in one process and prints the ratios:
//                            sharing_speedup       = shared prompt pages (n = 16 in one request,
//                                                    reserve) / no sharing (16 separate n = 1
//                                                    requests, no prefix cache, reserve)
//                            reserve_vs_optimistic = shared + reserve / shared + optimistic
// Prompts are seeded random ids from the ordinary (non-special) tokens; every sample runs
// exactly max_tokens tokens (ignore_eos) so all configurations do the same work.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "benchmarks/bench_util.h"
#include "cli/command.h"
#include "cli/engine_flags.h"
#include "engine/common/error.h"
#include "engine/model/config.h"
#include "engine/model/llama.h"
#include "engine/tokenizer/tokenizer.h"

namespace herd::cli {
namespace {

struct Workload {
  int prompts = 0, prompt_len = 0, n = 1, max_tokens = 0;
};

struct RunResult {
  double seconds = 0;
  int64_t output_tokens = 0, prompt_tokens = 0, preemptions = 0, prefix_hits = 0, steps = 0;
  double output_tokens_per_s() const { return double(output_tokens) / seconds; }
  nlohmann::ordered_json json() const {
    return {{"seconds", seconds},
            {"output_tokens", output_tokens},
            {"output_tokens_per_s", output_tokens_per_s()},
            {"prompt_tokens_computed_or_cached", prompt_tokens},
            {"preemptions", preemptions},
            {"prefix_hit_tokens", prefix_hits},
            {"steps", steps}};
  }
};

std::vector<std::vector<int32_t>> make_prompts(const Tokenizer& tok, const Workload& w,
                                               uint64_t seed) {
  std::vector<int32_t> ordinary;
  for (int32_t id = 0; id < tok.vocab_size(); ++id)
    if (!tok.is_special(id)) ordinary.push_back(id);
  std::mt19937_64 rng(seed);
  std::vector<std::vector<int32_t>> prompts(size_t(w.prompts));
  for (auto& p : prompts) {
    if (tok.bos_id() >= 0) p.push_back(tok.bos_id());
    while (int(p.size()) < w.prompt_len) p.push_back(ordinary[rng() % ordinary.size()]);
  }
  return prompts;
}

// split_samples: submit each of the n samples as its own n = 1 request (no page sharing).
RunResult run(const EngineOptions& opts, const Workload& w, bool split_samples, uint64_t seed) {
  auto engine = Engine::create(opts);
  const auto prompts = make_prompts(engine->tokenizer(), w, seed);
  std::vector<Request> reqs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const int copies = split_samples ? w.n : 1;
    for (int c = 0; c < copies; ++c) {
      Request r;
      r.id = "bench-" + std::to_string(i) + "-" + std::to_string(c);
      r.prompt_ids = prompts[i];
      r.params.n = split_samples ? 1 : w.n;
      r.params.temperature = 1.0;
      r.params.seed = seed + i * 1000 + uint64_t(c);
      r.params.max_tokens = w.max_tokens;
      r.params.ignore_eos = true;
      reqs.push_back(std::move(r));
    }
  }
  const auto t0 = bench::Clock::now();
  const auto out = engine->generate(std::move(reqs));
  RunResult r;
  r.seconds = bench::seconds_since(t0);
  for (const auto& req : out)
    for (const Output& o : req) {
      if (o.finish_reason != FinishReason::kLength)
        throw Error("bench request " + o.request_id + " ended with '" +
                    finish_reason_name(o.finish_reason) + "' " + o.error);
      r.output_tokens += int64_t(o.token_ids.size());
    }
  const EngineStats s = engine->stats();
  r.prompt_tokens = s.prompt_tokens;
  r.preemptions = s.preemptions;
  r.prefix_hits = s.prefix_hits_tokens;
  r.steps = s.steps;
  engine->shutdown();
  return r;
}

// --kv-blocks: the pool in blocks (overrides --kv-cache-gb) — the rs workload's "too small"
// pool is stated in blocks so that it means the same thing for every model.
double gb_for_blocks(const EngineOptions& o, int64_t blocks) {
  const ModelConfig cfg = load_model_config(o.model_dir);
  const DType kv = o.device == "cpu" ? DType::kF32 : DType::kBF16;
  return (double(blocks) + 0.5) * double(KvCache::bytes_per_block(cfg, o.block_size, kv)) /
         (1024.0 * 1024.0 * 1024.0);
}

int run_bench_offline(const std::vector<std::string>& args) {
  Flags f(args,
          with_engine_value_flags(
              {"workload", "seed", "kv-blocks", "prompts", "prompt-len", "max-tokens", "n"}),
          with_engine_switches({"json"}));
  EngineOptions opts = engine_options_from_flags(f);
  const std::string kind = f.str("workload", "throughput");
  const uint64_t seed = uint64_t(f.i64("seed", 1));
  Workload w;
  if (kind == "throughput") {
    w = {64, 256, 1, 64};
  } else if (kind == "rs") {
    w = {8, 512, 16, 64};
  } else {
    throw InvalidArgument("workload", "--workload must be throughput or rs, got '" + kind + "'");
  }
  w.prompts = int(f.i64("prompts", w.prompts));
  w.prompt_len = int(f.i64("prompt-len", w.prompt_len));
  w.max_tokens = int(f.i64("max-tokens", w.max_tokens));
  w.n = int(f.i64("n", w.n));
  if (w.prompts < 1 || w.prompt_len < 1 || w.max_tokens < 1 || w.n < 1)
    throw InvalidArgument("workload", "--prompts, --prompt-len, --max-tokens and --n must be >= 1");
  // rs default pool: one prompt's pages plus a quarter of its samples' private pages per
  // prompt, for half of the prompts — sharing fits about 4 prompts at once, no sharing far
  // fewer samples, so neither holds every sample at once.
  const int64_t blocks_per_prompt = (w.prompt_len + opts.block_size - 1) / opts.block_size;
  const int64_t blocks_per_sample =
      (w.prompt_len + w.max_tokens + opts.block_size - 1) / opts.block_size;
  int64_t kv_blocks = f.i64("kv-blocks", 0);
  if (kind == "rs" && kv_blocks == 0)
    kv_blocks = int64_t(w.prompts / 2) *
                (blocks_per_prompt + (blocks_per_sample - blocks_per_prompt + 1) * w.n);
  if (kv_blocks > 0) {
    if (kv_blocks < blocks_per_sample)
      throw InvalidArgument("kv-blocks", "--kv-blocks must hold one sample (" +
                                             std::to_string(blocks_per_sample) + " blocks)");
    opts.kv_cache_gb = gb_for_blocks(opts, kv_blocks);
  }

  nlohmann::ordered_json j;
  std::string cmd = "herd bench offline";
  for (const auto& a : args) cmd += " " + a;
  j["command"] = cmd;
  j["date"] = bench::utc_date();
  j["machine"] = bench::cpu_model() + ", " + std::to_string(std::thread::hardware_concurrency()) +
                 " hardware threads, load " + bench::load_average();
  j["workload"] = {{"name", kind},
                   {"prompts", w.prompts},
                   {"prompt_len", w.prompt_len},
                   {"n", w.n},
                   {"max_tokens", w.max_tokens},
                   {"kv_blocks", kv_blocks},
                   {"block_size", opts.block_size}};
  auto log = [&](const char* name, const RunResult& r) {
    std::fprintf(stderr, "[bench] %-28s %8.2f s  %10.1f output tok/s  preemptions %lld\n", name,
                 r.seconds, r.output_tokens_per_s(), (long long)r.preemptions);
  };
  if (kind == "throughput") {
    const RunResult r = run(opts, w, /*split_samples=*/false, seed);
    log("throughput", r);
    j["output_tokens_per_s"] = r.output_tokens_per_s();
    j["run"] = r.json();
  } else {
    EngineOptions shared_reserve = opts, unshared_reserve = opts, shared_optimistic = opts;
    shared_reserve.policy = AdmissionPolicy::kReserve;
    unshared_reserve.policy = AdmissionPolicy::kReserve;
    unshared_reserve.enable_prefix_caching = false;
    shared_optimistic.policy = AdmissionPolicy::kOptimistic;
    const RunResult a = run(shared_reserve, w, false, seed);
    log("shared pages + reserve", a);
    const RunResult b = run(unshared_reserve, w, true, seed);
    log("no sharing + reserve", b);
    const RunResult c = run(shared_optimistic, w, false, seed);
    log("shared pages + optimistic", c);
    j["output_tokens_per_s"] = a.output_tokens_per_s();
    j["sharing_speedup"] = a.output_tokens_per_s() / b.output_tokens_per_s();
    j["reserve_vs_optimistic"] = a.output_tokens_per_s() / c.output_tokens_per_s();
    j["runs"] = {{"shared_reserve", a.json()},
                 {"unshared_reserve", b.json()},
                 {"shared_optimistic", c.json()}};
  }
  if (f.has("json")) {
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf("command: %s\nmachine: %s\ndate: %s\n", cmd.c_str(),
                j["machine"].get<std::string>().c_str(), j["date"].get<std::string>().c_str());
    std::printf("output tokens/s: %.1f\n", j["output_tokens_per_s"].get<double>());
    if (kind == "rs")
      std::printf("sharing_speedup: %.2fx   reserve_vs_optimistic: %.2fx\n",
                  j["sharing_speedup"].get<double>(), j["reserve_vs_optimistic"].get<double>());
  }
  return 0;
}

HERD_COMMAND("bench offline",
             "--model DIR --workload throughput|rs [--json] [--seed S] [--kv-blocks N] "
             "[--prompts N --prompt-len L --max-tokens M --n N] [engine flags]",
             run_bench_offline);

}  // namespace
}  // namespace herd::cli
