// Constrained decoding cost (issue 15): (1) the time to compute one allowed-token mask on a
// real 128k Llama 3 vocabulary for schemas of increasing complexity, warm (the per-position and
// per-state caches filled, the steady state of a server) and cold (first sight of each state);
// (2) optionally, end-to-end decode throughput of an engine with and without a schema at
// batch 1 and 32.
//
// usage: bench_grammar_mask TOKENIZER_DIR [MODEL_DIR]
//   TOKENIZER_DIR: ../shared/testdata/llama3-tokenizer; MODEL_DIR: e.g. `herd make-model
//   --shape tiny-128k` (128k vocabulary, so that masks are as large as Llama 3's).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "benchmarks/bench_util.h"
#include "engine/api/engine.h"
#include "engine/grammar/constraint.h"
#include "engine/model/config.h"
#include "engine/tokenizer/tokenizer.h"

using namespace herd;
using bench::Clock;

namespace {

const char* kSchemas[][2] = {
    {"flat", R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},
        "required":["name","age"],"additionalProperties":false})"},
    {"nested", R"({"type":"object","properties":{"id":{"type":"integer"},"tags":{"type":"array",
        "items":{"type":"string"},"maxItems":4},"owner":{"type":"object","properties":{
        "level":{"enum":["low","mid","high"]},"score":{"type":"number"},"ok":{"type":"boolean"}},
        "required":["level","score","ok"],"additionalProperties":false}},
        "required":["id","tags","owner"],"additionalProperties":false})"},
    {"recursive", R"({"$defs":{"node":{"type":"object","properties":{"name":{"type":"string"},
        "value":{"anyOf":[{"type":"number"},{"type":"null"},{"enum":["a","b"]}]},
        "kids":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":3}},
        "required":["name","value","kids"],"additionalProperties":false}},"$ref":"#/$defs/node"})"},
};

struct Stats {
  double mean_us = 0, p50_us = 0, p99_us = 0;
  size_t n = 0;
};

Stats stats(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.n = v.size();
  s.mean_us = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
  s.p50_us = v[v.size() / 2];
  s.p99_us = v[std::min(v.size() - 1, size_t(double(v.size()) * 0.99))];
  return s;
}

// Random walks: each step masks, then takes a random allowed token, preferring (3 in 4) the
// tokens that leave a string or number soon, so walks finish and visit every kind of state.
void mask_benchmark(const Tokenizer& tok) {
  const Clock::time_point t0 = Clock::now();
  auto trie = std::make_shared<const grammar::TokenTrie>(grammar::TokenTrie::from_tokenizer(tok));
  std::printf("vocabulary %d tokens, trie %zu nodes, built in %.1f ms\n", tok.vocab_size(),
              trie->num_nodes(), bench::seconds_since(t0) * 1e3);
  std::printf("%-10s %8s %10s %10s %10s | %8s %10s %10s\n", "schema", "warm n", "mean us", "p50 us",
              "p99 us", "cold n", "mean us", "p99 us");
  const std::vector<int32_t> eos{128009};
  for (const auto& [name, schema] : kSchemas) {
    grammar::ConstraintCache cache(trie);
    ResponseFormat f;
    f.type = ResponseFormat::Type::kJsonSchema;
    f.schema = schema;
    auto masker = cache.get(f);
    std::mt19937 rng(1234);
    std::vector<double> warm, cold;
    for (int pass = 0; pass < 2; ++pass) {  // pass 0 fills the caches; pass 1 is the steady state
      std::mt19937 walk_rng(99);
      int steps = 0;
      for (int walk = 0; walk < 40 && steps < 3000; ++walk) {
        grammar::SequenceConstraint c(masker);
        for (int i = 0; i < 200; ++i, ++steps) {
          grammar::TokenBitset mask;
          const Clock::time_point m0 = Clock::now();
          c.fill_mask(tok.vocab_size(), eos, mask);
          const double us = bench::seconds_since(m0) * 1e6;
          (pass == 0 ? cold : warm).push_back(us);
          std::vector<int32_t> allowed, closing;
          for (int32_t id = 0; id < tok.vocab_size(); ++id) {
            if (!grammar::bitset_test(mask, id)) continue;
            allowed.push_back(id);
            const std::string b = id == eos[0] ? "" : tok.token_bytes(id);
            if (b.find_first_of("\"]},") != std::string::npos) closing.push_back(id);
          }
          if (allowed.empty()) break;
          const auto& pool = !closing.empty() && walk_rng() % 4 != 0 ? closing : allowed;
          const int32_t t = pool[walk_rng() % pool.size()];
          if (t == eos[0]) break;
          c.accept(t);
        }
      }
    }
    (void)rng;
    const Stats w = stats(warm), k = stats(cold);
    std::printf("%-10s %8zu %10.1f %10.1f %10.1f | %8zu %10.1f %10.1f\n", name, w.n, w.mean_us,
                w.p50_us, w.p99_us, k.n, k.mean_us, k.p99_us);
  }
}

void throughput_benchmark(const std::string& model_dir) {
  EngineOptions o;
  o.model_dir = model_dir;
  o.kv_cache_gb = 0.5;
  o.max_num_seqs = 64;
  std::printf("\nengine decode throughput, %s (threads: all)\n", model_dir.c_str());
  // Constrained replies end when their value is complete, so a batch shrinks as it runs and
  // tokens/s falls even at no cost per step: ms per step (the longest reply's length) is the
  // figure that compares the two formats; it still includes prefill and start-up.
  std::printf("%-6s %-10s %10s %10s %10s %8s %8s\n", "batch", "format", "tokens", "seconds",
              "tok/s", "steps", "ms/step");
  for (int batch : {1, 32}) {
    for (int constrained = 0; constrained < 2; ++constrained) {
      auto engine = Engine::create(o);
      std::vector<Request> reqs;
      for (int i = 0; i < batch; ++i) {
        Request r;
        r.id = std::string("b").append(std::to_string(i));
        r.prompt_ids = engine->tokenizer().encode(
            std::string("Write a JSON record number ").append(std::to_string(i)));
        r.params.seed = uint64_t(i + 1);
        r.params.max_tokens = 128;
        r.params.ignore_eos = !constrained;  // constrained replies end at their value's end
        if (constrained) {
          r.params.response_format.type = ResponseFormat::Type::kJsonSchema;
          r.params.response_format.schema = kSchemas[1][1];
        }
        reqs.push_back(std::move(r));
      }
      // An untimed pass of the same batch first: it fills the allocator and, for the
      // constrained run, the grammar's position and state caches with the states these
      // requests meet (a server that has seen the schema for a while); the first sight of a
      // grammar position costs a trie walk (the "cold" column above), not what this measures.
      engine->generate(reqs);
      const Clock::time_point t0 = Clock::now();
      const auto res = engine->generate(reqs);
      const double s = bench::seconds_since(t0);
      size_t tokens = 0, steps = 0;
      for (const auto& r : res)
        for (const Output& out : r) {
          tokens += out.token_ids.size();
          steps = std::max(steps, out.token_ids.size());
        }
      std::printf("%-6d %-10s %10zu %10.2f %10.1f %8zu %8.2f\n", batch,
                  constrained ? "nested" : "none", tokens, s, double(tokens) / s, steps,
                  steps ? s * 1e3 / double(steps) : 0.0);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s TOKENIZER_DIR [MODEL_DIR]\n", argv[0]);
    return 2;
  }
  std::printf("bench_grammar_mask %s%s%s | %s | %s\n", argv[1], argc > 2 ? " " : "",
              argc > 2 ? argv[2] : "", bench::cpu_model().c_str(), bench::utc_date().c_str());
  const std::unique_ptr<Tokenizer> tok = load_tokenizer(argv[1]);
  mask_benchmark(*tok);
  if (argc > 2) throughput_benchmark(argv[2]);
  return 0;
}
