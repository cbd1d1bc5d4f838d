// bench_decode: CPU decode tokens/s of a whole Llama model at batch 1 and 8, next to the
// memory-bandwidth roofline measured in the same run.
//
// Decode is memory-bound: every step reads every linear weight (and the lm_head) once,
// whatever the batch, so the fastest possible step takes weight bytes / read bandwidth. The
// bandwidth is a streaming sum over a buffer larger than the last-level cache with the same
// number of threads (bench_util.h), one pass after each timed decode step, so that the best-of
// bandwidth and the best decode step are taken over the same stretch of machine load (this
// machine may be shared). Each sequence first gets a prefill of --context tokens; each batch run
// then decodes --steps steps (after one untimed warm-up step) from that context, one token per
// sequence per step, greedy (argmax) so that the tokens are the model's own. KV blocks are
// handed out from a shared pool as the sequences grow and the step inputs carry block tables
// exactly as engine/api/step_input_builder.cc builds them.
//
// Without --model, a random llama3.2-1b-shaped bf16 checkpoint (engine/model/make_model.h) is
// written to a temporary directory and removed at exit; with --model DIR it is written there
// if DIR has no config.json, and reused otherwise.
//
// --separate-projections runs the model's fused QKV and gate/up projections
// (Backend::linear_group) as one linear() per weight, for a same-build comparison.
//
// usage: bench_decode [--model DIR] [--shape NAME] [--threads N] [--context T] [--steps N]
//                     [--buffer-gb G] [--breakdown] [--separate-projections]
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "benchmarks/bench_checkpoint.h"
#include "benchmarks/bench_util.h"
#include "benchmarks/timing_backend.h"
#include "engine/common/error.h"
#include "engine/model/config.h"
#include "engine/model/llama.h"
#include "engine/model/make_model.h"
#include "engine/model/weights.h"
#include "kernels/backend.h"
#include "kernels/cpu/thread_pool.h"

namespace {

using herd::bench::Clock;
using herd::bench::seconds_since;

constexpr int kBlockSize = 16;  // the engine's default KV block size

struct Options {
  std::string model;
  std::string shape = "llama3.2-1b";
  int threads = 0;
  int context = 128;
  int steps = 32;
  double buffer_gb = 1.0;
  bool breakdown = false;
  bool separate_projections = false;  // fused QKV / gate-up run as separate linear() calls
};

// A sequence's state: its KV blocks (logical order), context length and next input token.
struct Seq {
  std::vector<int32_t> blocks;
  int len = 0;
  int32_t next = 0;
};

// Hands out physical blocks in order, as a fresh block pool does.
struct BlockAllocator {
  int32_t next = 0;
  int32_t capacity = 0;
  void grow(Seq& s, int len) {
    while (int(s.blocks.size()) * kBlockSize < len) {
      if (next >= capacity) throw herd::Error("bench_decode: KV block pool exhausted");
      s.blocks.push_back(next++);
    }
  }
};

// One step: tokens [s.len, s.len + n) of each sequence (n = tokens[i].size()), logits for the
// last token of each. Same layout as build_step_input().
herd::StepInput make_step(const std::vector<Seq*>& seqs,
                          const std::vector<std::vector<int32_t>>& tokens) {
  herd::StepInput in;
  in.query_start.push_back(0);
  int max_blocks = 1;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const int ctx = seqs[i]->len + int(tokens[i].size());
    max_blocks = std::max(max_blocks, (ctx + kBlockSize - 1) / kBlockSize);
  }
  in.max_blocks_per_seq = max_blocks;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const Seq& s = *seqs[i];
    const int ctx = s.len + int(tokens[i].size());
    const int needed = (ctx + kBlockSize - 1) / kBlockSize;
    for (size_t t = 0; t < tokens[i].size(); ++t) {
      const int pos = s.len + int(t);
      in.token_ids.push_back(tokens[i][t]);
      in.positions.push_back(pos);
      in.slot_mapping.push_back(s.blocks[size_t(pos / kBlockSize)] * kBlockSize + pos % kBlockSize);
    }
    in.query_start.push_back(int32_t(in.token_ids.size()));
    in.seq_lens.push_back(ctx);
    for (int j = 0; j < max_blocks; ++j)
      in.block_tables.push_back(j < needed ? s.blocks[size_t(j)] : -1);
    in.logits_rows.push_back(int32_t(in.token_ids.size()) - 1);
  }
  return in;
}

int32_t argmax(const float* row, int64_t n) {
  return int32_t(std::max_element(row, row + n) - row);
}

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--model DIR] [--shape NAME] [--threads N] [--context T] [--steps N]\n"
               "          [--buffer-gb G] [--breakdown] [--separate-projections]\n",
               argv0);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--model" && has_value) {
      o.model = argv[++i];
    } else if (a == "--shape" && has_value) {
      o.shape = argv[++i];
    } else if (a == "--threads" && has_value) {
      o.threads = std::atoi(argv[++i]);
    } else if (a == "--context" && has_value) {
      o.context = std::atoi(argv[++i]);
    } else if (a == "--steps" && has_value) {
      o.steps = std::atoi(argv[++i]);
    } else if (a == "--buffer-gb" && has_value) {
      o.buffer_gb = std::atof(argv[++i]);
    } else if (a == "--breakdown") {
      o.breakdown = true;
    } else if (a == "--separate-projections") {
      o.separate_projections = true;
    } else {
      usage(argv[0]);
    }
  }
  if (o.context < 1 || o.steps < 1 || o.threads < 0 || o.buffer_gb <= 0) usage(argv[0]);
  return o;
}

void print_breakdown(const herd::bench::TimingBackend::Totals& tb, double forward_s, int steps,
                     double bandwidth) {
  double timed = 0.0;
  for (int p = 0; p < herd::bench::TimingBackend::kNumPhases; ++p) {
    const double s = tb.seconds[size_t(p)];
    timed += s;
    if (s == 0.0) continue;
    std::printf("    %-16s %8.2f ms  %5.1f%%", herd::bench::TimingBackend::phase_name(p),
                1e3 * s / steps, 100.0 * s / forward_s);
    if (tb.bytes[size_t(p)] > 0) {
      const double gbps = tb.bytes[size_t(p)] / s / 1e9;
      std::printf("  %6.1f GB/s (%5.1f%%)", gbps, 100.0 * gbps / bandwidth);
    }
    std::printf("\n");
  }
  std::printf("    %-16s %8.2f ms  %5.1f%%\n", "between ops", 1e3 * (forward_s - timed) / steps,
              100.0 * (forward_s - timed) / forward_s);
}

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  herd::cpu::ThreadPool pool(o.threads);  // same thread count as the backend's own pool
  herd::bench::print_command_and_machine(argc, argv, pool.size());
  std::printf("date: %s, load average %s\n", herd::bench::utc_date().c_str(),
              herd::bench::load_average().c_str());

  // ---- checkpoint
  const herd::bench::BenchCheckpoint checkpoint(o.model, o.shape, o.threads, "herd-bench-decode");
  const std::string& dir = checkpoint.dir();
  const herd::ModelConfig cfg = herd::load_model_config(dir);
  auto weights = std::make_shared<herd::LlamaWeights>(herd::load_llama_weights(dir, cfg));

  const double weight_bytes = herd::bench::step_weight_bytes(*weights);
  std::printf(
      "model: %lld layers, hidden %lld, ffn %lld, heads %lld/%lld, vocab %lld, %s weights, "
      "tied embeddings %s\n",
      (long long)cfg.num_hidden_layers, (long long)cfg.hidden_size,
      (long long)cfg.intermediate_size, (long long)cfg.num_attention_heads,
      (long long)cfg.num_key_value_heads, (long long)cfg.vocab_size,
      std::string(herd::dtype_name(weights->dtype)).c_str(),
      cfg.tie_word_embeddings ? "yes" : "no");
  std::printf("weight bytes per step (linear + lm_head): %.1f MB\n", weight_bytes / 1e6);

  // ---- backend, model, KV cache
  const std::vector<int> batches = {1, 8};
  const int max_batch = 8;
  auto cpu = herd::make_cpu_backend(o.threads);
  herd::bench::TimingBackend timing(*cpu);
  timing.split_groups(o.separate_projections);
  herd::Backend& backend =
      o.breakdown || o.separate_projections ? static_cast<herd::Backend&>(timing) : *cpu;
  herd::LlamaModel model(cfg, weights, backend, std::max(o.context, max_batch), max_batch);
  for (const auto& l : weights->layers) {
    for (const herd::Tensor* t : {&l.q_proj, &l.k_proj, &l.v_proj})
      timing.name_weight(*t, herd::bench::TimingBackend::kLinearQkv);
    timing.name_weight(l.o_proj, herd::bench::TimingBackend::kLinearO);
    timing.name_weight(l.gate_proj, herd::bench::TimingBackend::kLinearGateUp);
    timing.name_weight(l.up_proj, herd::bench::TimingBackend::kLinearGateUp);
    timing.name_weight(l.down_proj, herd::bench::TimingBackend::kLinearDown);
  }
  timing.name_weight(weights->lm_head, herd::bench::TimingBackend::kLmHead);

  const int max_len = o.context + o.steps + 1;
  const int blocks_per_seq = (max_len + kBlockSize - 1) / kBlockSize;
  herd::KvCache kv(backend, cfg, int64_t(max_batch) * blocks_per_seq, kBlockSize);
  BlockAllocator alloc{0, int32_t(max_batch * blocks_per_seq)};
  // A serving engine reuses its KV pool, so steady-state decode never writes a fresh page;
  // touch the whole cache once so that first-touch page faults stay out of the timed steps.
  {
    std::vector<char> zeros(kv.layer(0).k.bytes(), 0);
    for (size_t i = 0; i < size_t(cfg.num_hidden_layers); ++i) {
      backend.upload(kv.layer(i).k.data, zeros.data(), zeros.size());
      backend.upload(kv.layer(i).v.data, zeros.data(), zeros.size());
    }
  }
  const int64_t vocab = cfg.vocab_size;
  std::vector<float> logits(size_t(max_batch) * size_t(vocab));

  const std::vector<uint64_t> buffer =
      herd::bench::make_read_buffer(pool, size_t(o.buffer_gb * (1u << 30)));
  herd::bench::read_pass(pool, buffer.data(), buffer.size() * 8);  // warm-up
  double bandwidth = 0.0;  // best of the passes between timed steps

  // Prefill is one step per sequence (random prompt tokens), done just before the first batch
  // run that needs the sequence, so that batch 1 starts within seconds (a shared machine is
  // less likely to change load in between).
  std::vector<Seq> seqs(static_cast<size_t>(max_batch));
  std::mt19937 rng(1);
  std::uniform_int_distribution<int32_t> token(0, int32_t(vocab - 1));
  double prefill_s = 0.0;
  int prefilled = 0;
  auto prefill = [&](Seq& s) {
    std::vector<std::vector<int32_t>> prompt(1);
    for (int i = 0; i < o.context; ++i) prompt[0].push_back(token(rng));
    alloc.grow(s, o.context);
    const herd::StepInput in = make_step({&s}, prompt);
    const auto t0 = Clock::now();
    model.forward(in, kv, logits.data());
    prefill_s += seconds_since(t0);
    s.len = o.context;
    s.next = argmax(logits.data(), vocab);
    ++prefilled;
  };

  // ---- decode at each batch size, from the same prefilled contexts
  struct Result {
    int batch;
    double mean_step_s, median_step_s, best_step_s;
    herd::bench::TimingBackend::Totals breakdown;  // with --breakdown
  };
  std::vector<Result> results;
  for (const int b : batches) {
    while (prefilled < b) prefill(seqs[size_t(prefilled)]);
    std::vector<Seq*> active;
    std::vector<int32_t> first_tokens;
    for (int i = 0; i < b; ++i) {
      active.push_back(&seqs[size_t(i)]);
      active.back()->len = o.context;  // overwrite the previous run's decode slots
      first_tokens.push_back(active.back()->next);
    }
    std::vector<std::vector<int32_t>> step_tokens(size_t(b), std::vector<int32_t>(1));
    for (int i = 0; i < b; ++i) step_tokens[size_t(i)][0] = first_tokens[size_t(i)];
    std::vector<double> step_s;
    for (int step = 0; step < o.steps + 1; ++step) {  // step 0 is the warm-up
      for (Seq* s : active) alloc.grow(*s, s->len + 1);
      const herd::StepInput in = make_step(active, step_tokens);
      if (step == 1) timing.reset();
      const auto t0 = Clock::now();
      model.forward(in, kv, logits.data());
      if (step > 0) {
        step_s.push_back(seconds_since(t0));
        bandwidth =
            std::max(bandwidth, herd::bench::read_pass(pool, buffer.data(), buffer.size() * 8));
      }
      for (int i = 0; i < b; ++i) {
        active[size_t(i)]->len += 1;
        step_tokens[size_t(i)][0] = argmax(logits.data() + size_t(i) * size_t(vocab), vocab);
      }
    }
    for (int i = 0; i < b; ++i) active[size_t(i)]->next = first_tokens[size_t(i)];
    const double total = std::accumulate(step_s.begin(), step_s.end(), 0.0);
    const double mean = total / double(step_s.size());
    std::sort(step_s.begin(), step_s.end());
    results.push_back({b, mean, step_s[step_s.size() / 2], step_s.front(), timing.totals()});
  }

  // ---- report
  std::printf("prefill: %d sequences x %d tokens, one step each, %.1f tokens/s\n", prefilled,
              o.context, double(prefilled) * o.context / prefill_s);
  const double roofline_steps = bandwidth * 1e9 / weight_bytes;
  std::printf(
      "read bandwidth: %.1f GB/s (best of streaming passes over a %.2f GB buffer, %d threads, "
      "one pass after each timed decode step)\n",
      bandwidth, double(buffer.size() * 8) / 1e9, pool.size());
  std::printf("roofline: %.2f steps/s = %.1f GB/s / %.1f MB per step\n", roofline_steps, bandwidth,
              weight_bytes / 1e6);
  std::printf(
      "decode (%d timed steps after 1 warm-up, context %d -> %d; tok/s from the mean step, "
      "of roofline from the mean and the best step):\n",
      o.steps, o.context, o.context + o.steps + 1);
  std::printf(
      "  batch  ms/step mean  median    best    tok/s  roofline tok/s  of roofline (mean, best)\n");
  for (const Result& r : results) {
    const double tok_s = r.batch / r.mean_step_s;
    const double roof = r.batch * roofline_steps;
    std::printf("  %5d  %12.1f  %6.1f  %6.1f  %7.2f  %14.2f  %10.1f%%  %5.1f%%\n", r.batch,
                1e3 * r.mean_step_s, 1e3 * r.median_step_s, 1e3 * r.best_step_s, tok_s, roof,
                100.0 * tok_s / roof, 100.0 * (r.batch / r.best_step_s) / roof);
  }
  std::printf("load average at the end: %s\n", herd::bench::load_average().c_str());
  if (o.breakdown) {
    for (const Result& r : results) {
      std::printf(
          "batch %d breakdown per step (ms, %% of the step; linear: weight GB/s and %% "
          "of the read bandwidth):\n",
          r.batch);
      print_breakdown(r.breakdown, r.mean_step_s * o.steps, o.steps, bandwidth);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_decode: %s\n", e.what());
    return 1;
  }
}
