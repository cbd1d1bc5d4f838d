#include "benchmarks/client/serve_bench.h"

#include <cmath>
#include <memory>

#include "benchmarks/client/arrivals.h"
#include "benchmarks/client/http_backend.h"
#include "benchmarks/client/machine.h"
#include "benchmarks/client/metrics.h"
#include "benchmarks/client/report.h"
#include "benchmarks/client/runner.h"
#include "benchmarks/client/workload.h"
#include "engine/common/error.h"
#ifdef HERD_HAVE_GRPC
#include "benchmarks/client/grpc_backend.h"
#endif

namespace herd::bench {

bool serve_bench_has_grpc() {
#ifdef HERD_HAVE_GRPC
  return true;
#else
  return false;
#endif
}

namespace {

void validate(const ServeBenchConfig& c) {
  if (c.base_url.empty() == c.grpc.empty())
    throw InvalidArgument("base-url", "give exactly one of --base-url and --grpc");
  if (!c.grpc.empty() && !serve_bench_has_grpc())
    throw InvalidArgument("grpc", "this herd was built without gRPC; use --base-url");
  if (!c.base_url.empty() && c.model.empty())
    throw InvalidArgument("model", "missing required flag --model (the served model name)");
  if (c.num_prompts < 1) throw InvalidArgument("num-prompts", "--num-prompts must be >= 1");
  if (c.output_len < 1) throw InvalidArgument("output-len", "--output-len must be >= 1");
  if (c.prefix_len < 0) throw InvalidArgument("prefix-len", "--prefix-len must be >= 0");
  if (c.dataset.empty() && c.input_len < 1)
    throw InvalidArgument("input-len", "--input-len must be >= 1 (or give --dataset)");
  if (!c.dataset.empty() && c.input_len != 0)
    throw InvalidArgument("input-len", "--input-len does not apply to --dataset prompts");
  if (!c.dataset.empty() && !c.tokenizer_dir.empty())
    throw InvalidArgument("tokenizer", "--tokenizer applies to random prompts, not --dataset");
  if (!c.dataset.empty() && c.prefix_len != 0)
    throw InvalidArgument("prefix-len", "--prefix-len applies to random prompts, not --dataset");
  if (!(c.request_rate > 0))
    throw InvalidArgument("request-rate", "--request-rate must be > 0 or inf");
  if (c.max_concurrency < 0)
    throw InvalidArgument("max-concurrency", "--max-concurrency must be >= 1");
}

}  // namespace

nlohmann::ordered_json run_serve_bench(const ServeBenchConfig& cfg, std::FILE* out) {
  validate(cfg);
  std::string model = cfg.model;
  std::unique_ptr<Backend> backend;
  if (!cfg.base_url.empty()) {
    backend = std::make_unique<HttpBackend>(cfg.base_url, cfg.model, cfg.api_key);
  } else {
#ifdef HERD_HAVE_GRPC
    auto g = std::make_unique<GrpcBackend>(cfg.grpc, cfg.api_key);
    if (model.empty()) model = g->model_name();
    backend = std::move(g);
#endif
  }

  WorkloadOptions wo;
  wo.num_prompts = cfg.num_prompts;
  wo.input_len = cfg.input_len;
  wo.output_len = cfg.output_len;
  wo.prefix_len = cfg.prefix_len;
  wo.seed = cfg.seed;
  std::vector<BenchRequest> requests;
  if (!cfg.dataset.empty()) {
    requests = dataset_workload(wo, cfg.dataset);
  } else if (!cfg.tokenizer_dir.empty()) {
    requests = random_workload(wo, local_token_pool(cfg.tokenizer_dir));
  } else {
    requests = random_workload(wo, token_pool(backend->tokenize(std::string(pool_text()))));
  }
  // Arrivals use their own stream so that the prompts do not depend on the rate.
  std::vector<double> arrivals =
      poisson_arrivals(cfg.num_prompts, cfg.request_rate, cfg.seed ^ 0x9e3779b97f4a7c15ull);

  std::fprintf(out, "Starting initial single prompt test run...\n");
  std::fflush(out);
  RequestOutput warm = backend->send(requests.front());
  if (!warm.success)
    throw Error("the initial test request failed; check the settings. Error: " + warm.error);
  std::fprintf(out, "Initial test run completed. Starting main benchmark run...\n");
  const bool inf_rate = std::isinf(cfg.request_rate);
  // Python's float repr, as vLLM prints it: "inf", "4.0", "2.5".
  char rate[32];
  std::snprintf(rate, sizeof rate, cfg.request_rate == std::floor(cfg.request_rate) ? "%.1f" : "%g",
                cfg.request_rate);
  std::fprintf(out, "Traffic request rate: %s\n", inf_rate ? "inf" : rate);
  std::fprintf(out, "Burstiness factor: 1.0 (Poisson process)\n");
  std::fprintf(out, "Maximum request concurrency: %s\n",
               cfg.max_concurrency > 0 ? std::to_string(cfg.max_concurrency).c_str() : "None");
  std::fflush(out);

  RunResult run = run_requests(*backend, requests, arrivals, cfg.max_concurrency);
  BenchmarkMetrics m = calculate_metrics(requests, run.outputs, run.duration);
  std::fputs(format_table(m).c_str(), out);
  std::fflush(out);

  nlohmann::ordered_json j;
  j["date"] = date_now();
  j["backend"] = backend->name();
  j["model_id"] = model;
  if (!cfg.base_url.empty())
    j["base_url"] = cfg.base_url;
  else
    j["grpc"] = cfg.grpc;
  j["num_prompts"] = cfg.num_prompts;
  j["dataset"] =
      cfg.dataset.empty() ? nlohmann::ordered_json("random") : nlohmann::ordered_json(cfg.dataset);
  if (!cfg.tokenizer_dir.empty()) j["tokenizer"] = cfg.tokenizer_dir;
  j["input_len"] = cfg.input_len;
  j["output_len"] = cfg.output_len;
  j["prefix_len"] = cfg.prefix_len;
  j["seed"] = cfg.seed;
  j["request_rate"] =
      inf_rate ? nlohmann::ordered_json("inf") : nlohmann::ordered_json(cfg.request_rate);
  j["burstiness"] = 1.0;
  j["max_concurrency"] =
      cfg.max_concurrency > 0 ? nlohmann::ordered_json(cfg.max_concurrency) : nullptr;
  j["command_line"] = cfg.command_line;
  j["machine"] = {{"cpu_model", cpu_model()}, {"cores", cpu_cores()}};
  const nlohmann::ordered_json results = metrics_json(m);
  for (const auto& [k, v] : results.items()) j[k] = v;
  return j;
}

}  // namespace herd::bench
