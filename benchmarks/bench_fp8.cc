// bench_fp8: row-wise FP8 feed-forward vs BF16 on the CPU backend, the same model, in the same
// run, alternating (BF16 then FP8, round after round) so that a shared machine's load drifts
// hit both alike. Batch-1 decode tokens/s and prefill tokens/s of each, and their ratios per
// round; the FP8 weights are quantized at load by the same code as `herd quantize`
// (engine/model/fp8_quantize.h: layers 1 .. L-2 FFN in E4M3 with row scales, cap 1200).
//
// Decode is memory-bound: a step reads every linear weight once, so FP8 FFN weights (half the
// bytes of BF16, and the FFN is ~2/3 of a Llama's linear weights) set the ceiling ratio
// bf16 bytes / fp8 bytes per step, printed next to the measured ratio.
//
// usage: bench_fp8 [--model DIR] [--shape NAME] [--threads N] [--context T] [--steps N]
//                  [--rounds R]
// Without --model, a random llama3.2-1b-shaped bf16 checkpoint is written to a temporary
// directory (removed at exit); with --model DIR it is written there if DIR has no config.json.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "benchmarks/bench_checkpoint.h"
#include "benchmarks/bench_util.h"
#include "engine/common/error.h"
#include "engine/model/config.h"
#include "engine/model/fp8_quantize.h"
#include "engine/model/llama.h"
#include "engine/model/make_model.h"
#include "engine/model/weights.h"
#include "kernels/backend.h"

namespace {

using herd::bench::Clock;
using herd::bench::seconds_since;

struct Options {
  std::string model;
  std::string shape = "llama3.2-1b";
  int threads = 0;
  int context = 64;
  int steps = 16;
  int rounds = 3;
};

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--model DIR] [--shape NAME] [--threads N] [--context T] [--steps N] "
               "[--rounds R]\n",
               argv0);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool v = i + 1 < argc;
    if (a == "--model" && v)
      o.model = argv[++i];
    else if (a == "--shape" && v)
      o.shape = argv[++i];
    else if (a == "--threads" && v)
      o.threads = std::atoi(argv[++i]);
    else if (a == "--context" && v)
      o.context = std::atoi(argv[++i]);
    else if (a == "--steps" && v)
      o.steps = std::atoi(argv[++i]);
    else if (a == "--rounds" && v)
      o.rounds = std::atoi(argv[++i]);
    else
      usage(argv[0]);
  }
  if (o.context < 1 || o.steps < 1 || o.rounds < 1 || o.threads < 0) usage(argv[0]);
  return o;
}

// One sequence on one model: a prefill of `context` tokens, then `steps` greedy decode steps.
struct Runner {
  herd::LlamaModel model;
  herd::KvCache kv;
  int64_t vocab;
  std::vector<float> logits;
  Runner(const herd::ModelConfig& cfg, std::shared_ptr<const herd::LlamaWeights> w,
         herd::Backend& be, int max_len)
      : model(cfg, std::move(w), be, max_len, 1),
        kv(be, cfg, (max_len + 15) / 16, 16),
        vocab(cfg.vocab_size),
        logits(size_t(cfg.vocab_size)) {}

  herd::StepInput step(int begin, const std::vector<int32_t>& tokens) {
    herd::StepInput in;
    const int end = begin + int(tokens.size());
    for (int p = begin; p < end; ++p) {
      in.token_ids.push_back(tokens[size_t(p - begin)]);
      in.positions.push_back(p);
      in.slot_mapping.push_back(p);
    }
    in.logits_rows = {int32_t(tokens.size()) - 1};
    in.query_start = {0, int32_t(tokens.size())};
    in.seq_lens = {end};
    in.max_blocks_per_seq = int(kv.num_blocks());
    for (int b = 0; b < kv.num_blocks(); ++b) in.block_tables.push_back(b);
    return in;
  }
  int32_t argmax() const {
    return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  // Returns {prefill seconds, mean decode step seconds}.
  std::pair<double, double> run(const std::vector<int32_t>& prompt, int steps) {
    auto t0 = Clock::now();
    model.forward(step(0, prompt), kv, logits.data());
    const double prefill = seconds_since(t0);
    int32_t next = argmax();
    model.forward(step(int(prompt.size()), {next}), kv, logits.data());  // warm-up
    next = argmax();
    t0 = Clock::now();
    for (int s = 0; s < steps; ++s) {
      model.forward(step(int(prompt.size()) + 1 + s, {next}), kv, logits.data());
      next = argmax();
    }
    return {prefill, seconds_since(t0) / steps};
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  auto backend = herd::make_cpu_backend(o.threads);
  const int threads =
      o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  herd::bench::print_command_and_machine(argc, argv, threads);
  std::printf("date: %s, load average %s\n", herd::bench::utc_date().c_str(),
              herd::bench::load_average().c_str());
  const herd::bench::BenchCheckpoint checkpoint(o.model, o.shape, o.threads, "herd-bench-fp8");
  const std::string& dir = checkpoint.dir();
  const herd::ModelConfig cfg = herd::load_model_config(dir);
  auto bf16 = std::make_shared<const herd::LlamaWeights>(herd::load_llama_weights(dir, cfg));
  const auto t0 = Clock::now();
  auto fp8 =
      std::make_shared<const herd::LlamaWeights>(herd::quantize_llama_weights_fp8(*bf16, cfg, {}));
  std::printf("quantized at load in %.1f s (%zu of %lld layers' FFN in FP8)\n", seconds_since(t0),
              herd::fp8_quantized_layers(cfg, {}).size(), (long long)cfg.num_hidden_layers);
  const double b16 = herd::bench::step_weight_bytes(*bf16),
               b8 = herd::bench::step_weight_bytes(*fp8);
  std::printf("weight bytes per decode step: bf16 %.1f MB, fp8 %.1f MB -> ceiling ratio %.2fx\n",
              b16 / 1e6, b8 / 1e6, b16 / b8);

  const int max_len = o.context + o.steps + 2;
  Runner r16(cfg, bf16, *backend, max_len), r8(cfg, fp8, *backend, max_len);
  std::vector<int32_t> prompt;
  for (int i = 0; i < o.context; ++i)
    prompt.push_back(int32_t((i * 7919 + 13) % (cfg.vocab_size - 256)));
  std::vector<double> dec_ratio, pre_ratio, d16, d8, p16, p8;
  std::printf(
      "round  bf16 decode tok/s  fp8 decode tok/s  ratio  bf16 prefill tok/s  fp8 prefill tok/s  "
      "ratio  load\n");
  for (int round = 0; round < o.rounds; ++round) {
    const auto [pa, da] = r16.run(prompt, o.steps);
    const auto [pb, db] = r8.run(prompt, o.steps);
    d16.push_back(1.0 / da);
    d8.push_back(1.0 / db);
    p16.push_back(o.context / pa);
    p8.push_back(o.context / pb);
    dec_ratio.push_back(da / db);
    pre_ratio.push_back(pa / pb);
    std::printf("%5d  %17.2f  %16.2f  %5.2f  %18.1f  %17.1f  %5.2f  %s\n", round, 1.0 / da,
                1.0 / db, da / db, o.context / pa, o.context / pb, pa / pb,
                herd::bench::load_average().c_str());
    std::fflush(stdout);
  }
  std::printf(
      "median: decode bf16 %.2f tok/s, fp8 %.2f tok/s, ratio %.2fx (ceiling %.2fx); prefill "
      "bf16 %.1f tok/s, fp8 %.1f tok/s, ratio %.2fx\n",
      median(d16), median(d8), median(dec_ratio), b16 / b8, median(p16), median(p8),
      median(pre_ratio));
  std::printf("load average at the end: %s\n", herd::bench::load_average().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_fp8: %s\n", e.what());
    return 1;
  }
}
