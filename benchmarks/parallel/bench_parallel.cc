// bench_parallel: throughput vs latency of one engine configuration (one process, or TP x PP
// ranks under mpirun) for a few batch sizes — the points of the Llama 3 paper's Fig. 24.
//
//   mpirun -np 2 bench_parallel --model DIR -pp 2 --micro-batches 2 --threads 1
//          --workload decode --batch-sizes 1,2,4,8 --input-len 16 --output-len 32
//
// workload prefill: each batch is B prompts of --input-len tokens and 1 output token;
//   throughput = prompt tokens / s, latency = mean time to first token (ms).
// workload decode:  B prompts of --input-len tokens, --output-len tokens each (prefill first,
//   untimed); throughput = output tokens / s over the decode phase, latency = mean time per
//   output token of a sequence (ms).
// Every line printed after the header is one JSON point; benchmarks/parallel/run_fig24.sh runs
// the configurations and plot_fig24.py draws the curves. Worker ranks print nothing.
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "benchmarks/bench_util.h"
#include "engine/api/engine.h"
#include "engine/api/parallel_engine.h"
#include "engine/parallel/mpi_communicator.h"

namespace herd {
namespace {

using bench::Clock;

struct Args {
  EngineOptions o;
  std::string workload = "decode";
  std::vector<int> batches = {1, 2, 4, 8};
  int input_len = 16, output_len = 32;
  std::string label;
};

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> v;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');) v.push_back(std::atoi(x.c_str()));
  return v;
}

Args parse(int argc, char** argv) {
  Args a;
  a.o.kv_cache_gb = 2.0;
  a.o.enable_prefix_caching = false;  // every batch computes its prompts
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") a.o.model_dir = v;
    else if (k == "--tp" || k == "-tp") a.o.parallel.tensor_parallel_size = std::atoi(v.c_str());
    else if (k == "--pp" || k == "-pp") a.o.parallel.pipeline_parallel_size = std::atoi(v.c_str());
    else if (k == "--micro-batches") a.o.parallel.micro_batches = std::atoi(v.c_str());
    else if (k == "--threads") a.o.threads = std::atoi(v.c_str());
    else if (k == "--kv-cache-gb") a.o.kv_cache_gb = std::atof(v.c_str());
    else if (k == "--max-num-batched-tokens") a.o.max_num_batched_tokens = std::atoi(v.c_str());
    else if (k == "--long-prefill-token-threshold")
      a.o.long_prefill_token_threshold = std::atoi(v.c_str());
    else if (k == "--workload") a.workload = v;
    else if (k == "--batch-sizes") a.batches = parse_list(v);
    else if (k == "--input-len") a.input_len = std::atoi(v.c_str());
    else if (k == "--output-len") a.output_len = std::atoi(v.c_str());
    else if (k == "--label") a.label = v;
    else {
      std::fprintf(stderr, "bench_parallel: unknown flag %s\n", k.c_str());
      std::exit(2);
    }
  }
  if (a.o.model_dir.empty() || (a.workload != "decode" && a.workload != "prefill")) {
    std::fprintf(stderr, "usage: bench_parallel --model DIR [--tp T --pp P --micro-batches M] "
                         "--workload decode|prefill [--batch-sizes 1,2,4] ...\n");
    std::exit(2);
  }
  a.o.max_num_seqs = *std::max_element(a.batches.begin(), a.batches.end());
  if (a.workload == "prefill") a.output_len = 1;
  return a;
}

struct Point {
  double throughput = 0, latency_ms = 0, seconds = 0;
};

// Runs B requests at once; records each one's first-token and finish times.
Point run_batch(Engine& engine, const Args& a, int batch, int round) {
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  std::vector<Clock::time_point> first(static_cast<size_t>(batch)), last(first);
  std::vector<int> tokens(size_t(batch), 0);
  const Clock::time_point t0 = Clock::now();
  for (int b = 0; b < batch; ++b) {
    Request r;
    r.id = std::string("r").append(std::to_string(round)).append("-").append(std::to_string(b));
    for (int i = 0; i < a.input_len; ++i)
      r.prompt_ids.push_back(int32_t((i * 31 + b * 17 + round * 7 + 3) % 250 + 1));
    r.params.temperature = 0.0;
    r.params.max_tokens = a.output_len;
    r.params.ignore_eos = true;
    engine.add_request(std::move(r), [&, b](const Output& o) {
      std::lock_guard<std::mutex> l(mu);
      const Clock::time_point now = Clock::now();
      if (!o.token_ids.empty()) {
        if (tokens[size_t(b)] == 0) first[size_t(b)] = now;
        last[size_t(b)] = now;
        tokens[size_t(b)] += int(o.token_ids.size());
      }
      if (o.request_finished) ++done, cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> l(mu);
  cv.wait(l, [&] { return done == batch; });
  const Clock::time_point t1 = Clock::now();
  Point p;
  p.seconds = std::chrono::duration<double>(t1 - t0).count();
  auto ms = [](Clock::time_point x, Clock::time_point y) {
    return std::chrono::duration<double, std::milli>(y - x).count();
  };
  if (a.workload == "prefill") {
    double ttft = 0;
    for (int b = 0; b < batch; ++b) ttft += ms(t0, first[size_t(b)]);
    p.latency_ms = ttft / batch;
    p.throughput = double(batch) * a.input_len / p.seconds;
  } else {
    // Decode phase: from the last first token to the end (every sequence decoding together).
    const Clock::time_point start = *std::max_element(first.begin(), first.end());
    double tpot = 0;
    int out = 0;
    for (int b = 0; b < batch; ++b) {
      tpot += ms(first[size_t(b)], last[size_t(b)]) / std::max(1, tokens[size_t(b)] - 1);
      out += tokens[size_t(b)] - 1;
    }
    p.latency_ms = tpot / batch;
    p.throughput = double(out) / (ms(start, t1) / 1000.0 + 1e-9);
  }
  return p;
}

int run(int argc, char** argv) {
  const Args a = parse(argc, argv);
  std::unique_ptr<Engine> engine = Engine::create(a.o);  // worker ranks serve and exit
  const ParallelConfig& pc = a.o.parallel;
  bench::print_command_and_machine(argc, argv, a.o.threads);
  std::printf("date: %s, load average %s\n", bench::utc_date().c_str(),
              bench::load_average().c_str());
  const std::string label =
      !a.label.empty() ? a.label
                       : "tp" + std::to_string(pc.tensor_parallel_size) + "-pp" +
                             std::to_string(pc.pipeline_parallel_size) + "-mb" +
                             std::to_string(pc.plans_in_flight()) + "-t" +
                             std::to_string(a.o.threads);
  run_batch(*engine, a, 1, 0);  // warm-up: page in the weights
  int round = 1;
  for (int b : a.batches) {
    const Point p = run_batch(*engine, a, b, round++);
    std::printf("{\"config\": \"%s\", \"workload\": \"%s\", \"batch\": %d, \"input_len\": %d, "
                "\"output_len\": %d, \"throughput_tok_s\": %.2f, \"latency_ms\": %.2f, "
                "\"seconds\": %.3f}\n",
                label.c_str(), a.workload.c_str(), b, a.input_len, a.output_len, p.throughput,
                p.latency_ms, p.seconds);
    std::fflush(stdout);
  }
  engine->shutdown();
  return 0;
}

}  // namespace
}  // namespace herd

int main(int argc, char** argv) {
  int rc = 1;
  try {
    rc = herd::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_parallel: %s\n", e.what());
    herd::MpiRuntime::abort_job(1, e.what());
  }
  std::fflush(stdout);
  herd::finalize_parallel();
  return rc;
}
