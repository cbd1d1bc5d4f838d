// Run under mpirun (np = tp * pp): the TP x PP engine answers a fixed set of requests — chunked
// prefills, n > 1 samples sharing their prompt pages, prefix-cache hits, seeded sampling,
// logprobs and (scenario "preempt") preemption under a tiny KV pool — and rank 0 checks them
// against a single-process engine over the same checkpoint built in the same process:
// every token identical (greedy and seeded) and every reported logprob within kLogprobTol.
//
//   mpirun -np 4 parallel_engine_check --model DIR --tp 2 --pp 2 [--micro-batches M]
//          [--scenario basic|preempt] [--logprob-tol T]
// Exit status 0 when everything matches; 1 with the first differences printed otherwise.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engine/api/backend_factory.h"
#include "engine/api/engine.h"
#include "engine/api/llm_engine.h"
#include "engine/api/parallel_engine.h"
#include "engine/model/llama.h"
#include "engine/model/weights.h"
#include "engine/parallel/mpi_communicator.h"

namespace herd {
namespace {

// TP sums partial products in another order (all-reduce) than one process does: the logits
// differ by float rounding only. Logprobs of the tiny fp32 model agree far below this default.
// A BF16 checkpoint on the packed BF16 GEMM rounds every linear's input to bf16, so an fp32
// difference in the last bit can flip one element's bf16 rounding (a relative 2^-8 step):
// its tests pass --logprob-tol 0.02 (tokens must still be identical; measured max 0.0038).
double logprob_tol = 2e-4;

std::vector<int32_t> prompt(int len, int salt) {
  std::vector<int32_t> p;
  for (int i = 0; i < len; ++i) p.push_back(int32_t((i * 37 + salt * 101 + 13) % 251));
  return p;
}

Request make(const std::string& id, std::vector<int32_t> p, int max_tokens, double temperature,
             uint64_t seed, int n) {
  Request r;
  r.id = id;
  r.prompt_ids = std::move(p);
  r.params.temperature = temperature;
  r.params.top_p = temperature > 0 ? 0.95 : 1.0;
  r.params.seed = seed;
  r.params.n = n;
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  r.params.logprobs = 2;
  return r;
}

std::vector<Request> requests(const std::string& scenario) {
  std::vector<Request> rs;
  if (scenario == "preempt") {
    for (int i = 0; i < 6; ++i)
      rs.push_back(make(std::string("p").append(std::to_string(i)), prompt(60, i), 40,
                        i % 2 ? 0.8 : 0.0, uint64_t(11 + i), 1));
    return rs;
  }
  rs.push_back(make("greedy-short", prompt(5, 1), 12, 0.0, 0, 1));
  rs.push_back(make("greedy-chunked", prompt(300, 2), 10, 0.0, 0, 1));  // > the step budget
  rs.push_back(make("seeded-n3", prompt(50, 3), 12, 0.9, 1234, 3));     // shared prompt pages
  rs.push_back(make("prefix-a", prompt(96, 4), 8, 0.0, 0, 1));
  std::vector<int32_t> b = prompt(96, 4);
  b.push_back(7), b.push_back(9);
  rs.push_back(make("prefix-b", b, 8, 0.7, 99, 1));  // same first 96 tokens
  return rs;
}

EngineOptions options(const std::string& model, const std::string& scenario) {
  EngineOptions o;
  o.model_dir = model;
  o.threads = 1;
  o.max_num_seqs = 16;
  o.max_num_batched_tokens = 64;
  // preempt: 40 blocks of 16 tokens: six 100-token sequences (7 blocks each) cannot all run.
  o.kv_blocks_override = scenario == "preempt" ? 40 : 2048;
  return o;
}

int compare(const std::vector<std::vector<Output>>& got,
            const std::vector<std::vector<Output>>& want, const std::vector<Request>& reqs) {
  int bad = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    for (size_t s = 0; s < want[i].size(); ++s) {
      const Output& g = got[i][s];
      const Output& w = want[i][s];
      if (!g.error.empty()) {
        std::printf("FAIL %s/%zu: error %s\n", reqs[i].id.c_str(), s, g.error.c_str());
        ++bad;
        continue;
      }
      if (g.token_ids != w.token_ids) {
        std::printf("FAIL %s/%zu: tokens differ\n", reqs[i].id.c_str(), s);
        ++bad;
        continue;
      }
      double worst = 0;
      for (size_t t = 0; t < w.logprobs.size() && t < g.logprobs.size(); ++t)
        worst = std::max(worst, double(std::fabs(g.logprobs[t].logprob - w.logprobs[t].logprob)));
      if (g.logprobs.size() != w.logprobs.size() || worst > logprob_tol) {
        std::printf("FAIL %s/%zu: logprob max |d| %.3g (tolerance %.1g)\n", reqs[i].id.c_str(),
                    s, worst, logprob_tol);
        ++bad;
        continue;
      }
      std::printf("ok   %s/%zu: %zu tokens, logprob max |d| %.3g\n", reqs[i].id.c_str(), s,
                  w.token_ids.size(), worst);
    }
  }
  return bad;
}

int run(int argc, char** argv) {
  std::string model, scenario = "basic";
  EngineOptions base;
  ParallelConfig pc;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") model = v;
    else if (k == "--tp") pc.tensor_parallel_size = std::atoi(v.c_str());
    else if (k == "--pp") pc.pipeline_parallel_size = std::atoi(v.c_str());
    else if (k == "--micro-batches") pc.micro_batches = std::atoi(v.c_str());
    else if (k == "--scenario") scenario = v;
    else if (k == "--logprob-tol") logprob_tol = std::atof(v.c_str());
  }
  if (model.empty()) {
    std::fprintf(stderr, "usage: parallel_engine_check --model DIR --tp T --pp P\n");
    return 2;
  }
  EngineOptions o = options(model, scenario);
  const ModelConfig cfg = load_model_config(model);
  EngineOptions par = o;
  par.parallel = pc;
  std::unique_ptr<Engine> engine = Engine::create(par);  // worker ranks never return
  const std::vector<Request> reqs = requests(scenario);
  const auto got = engine->generate(reqs);
  const EngineStats st = engine->stats();
  engine->shutdown();
  engine.reset();

  // The reference: one process, whole model, one plan in flight.
  EngineParts parts;
  parts.config = cfg;
  parts.tokenizer = load_tokenizer(model);
  parts.backend = make_backend("cpu", 1);
  parts.weights = std::make_shared<const LlamaWeights>(load_llama_weights(model, cfg));
  LlmEngine ref(std::move(parts), o);
  const auto want = ref.generate(reqs);
  ref.shutdown();

  std::printf("tp %d pp %d micro-batches %d scenario %s: %lld steps, %lld preemptions, "
              "%lld prefix-hit tokens\n",
              pc.tensor_parallel_size, pc.pipeline_parallel_size, pc.plans_in_flight(),
              scenario.c_str(), (long long)st.steps, (long long)st.preemptions,
              (long long)st.prefix_hits_tokens);
  const int bad = compare(got, want, reqs);
  if (scenario == "preempt" && st.preemptions == 0) {
    std::printf("FAIL: the preempt scenario did not preempt\n");
    return 1;
  }
  std::printf(bad ? "FAILED: %d outputs differ\n" : "PASSED\n", bad);
  return bad ? 1 : 0;
}

}  // namespace
}  // namespace herd

int main(int argc, char** argv) {
  int rc = 1;
  try {
    rc = herd::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "parallel_engine_check: %s\n", e.what());
    herd::MpiRuntime::abort_job(1, e.what());
  }
  std::fflush(stdout);
  herd::finalize_parallel();
  return rc;
}
