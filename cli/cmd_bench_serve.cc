// `herd bench serve`: the online serving benchmark client (vLLM `bench serve` metrics) against
// a running server over HTTP (/v1/completions streaming) or gRPC (herd.v1.Herd/Generate). The
// work is in benchmarks/client; this file only turns flags into a ServeBenchConfig.
#ifdef HERD_HAVE_BENCH_CLIENT

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>

#include "benchmarks/client/serve_bench.h"
#include "cli/command.h"
#include "cli/flags.h"
#include "engine/common/error.h"

namespace herd::cli {
namespace {

constexpr const char* kUsage =
    "--base-url http://HOST:PORT | --grpc HOST:PORT  --model NAME [--api-key KEY | env "
    "HERD_API_KEY] --num-prompts N (--input-len L | --dataset FILE.jsonl) --output-len L "
    "[--prefix-len L] [--tokenizer DIR] [--request-rate R|inf] [--max-concurrency C] [--seed S] "
    "[--json FILE|-]";

int int_flag(const Flags& f, const std::string& name, int64_t def, int64_t lo) {
  int64_t v = f.i64(name, def);
  if (v < lo || v > std::numeric_limits<int32_t>::max())
    throw InvalidArgument(name, "flag --" + name + " must be at least " + std::to_string(lo));
  return static_cast<int>(v);
}

double rate_flag(const Flags& f) {
  const std::string s = f.str("request-rate", "inf");
  if (s == "inf" || s == "Inf" || s == "INF") return std::numeric_limits<double>::infinity();
  double r = f.f64("request-rate", 0);
  if (!(r > 0) || std::isinf(r))
    throw InvalidArgument("request-rate", "flag --request-rate must be a rate > 0 or 'inf'");
  return r;
}

std::string command_line(const std::vector<std::string>& args) {
  std::string s = "herd bench serve";
  for (const auto& a : args)
    s += a.find_first_of(" \t\"'") == std::string::npos ? " " + a : " '" + a + "'";
  return s;
}

struct Parsed {
  bench::ServeBenchConfig cfg;
  std::string json_path;  // "" none, "-" stdout
};

Parsed parse(const std::vector<std::string>& args) {
  Flags f(args, {"base-url", "grpc", "model", "api-key", "num-prompts", "input-len", "output-len",
                 "prefix-len", "dataset", "tokenizer", "request-rate", "max-concurrency", "seed",
                 "json"});
  if (!f.positional().empty())
    throw InvalidArgument("", "unexpected argument '" + f.positional()[0] + "'");
  Parsed p;
  p.json_path = f.str("json", "");
  if (f.has("json") && p.json_path.empty())
    throw InvalidArgument("json", "flag --json needs a file name or '-'");
  bench::ServeBenchConfig& c = p.cfg;
  c.base_url = f.str("base-url", "");
  c.grpc = f.str("grpc", "");
  if (f.has("base-url") == f.has("grpc"))
    throw InvalidArgument("base-url", "give exactly one of --base-url and --grpc");
  c.model = c.grpc.empty() ? f.required("model") : f.str("model", "");
  if (f.has("api-key"))
    c.api_key = f.str("api-key", "");
  else if (const char* env = std::getenv("HERD_API_KEY"))
    c.api_key = env;
  f.required("num-prompts");
  c.num_prompts = int_flag(f, "num-prompts", 0, 1);
  f.required("output-len");
  c.output_len = int_flag(f, "output-len", 0, 1);
  c.dataset = f.str("dataset", "");
  if (c.dataset.empty()) {
    f.required("input-len");
    c.input_len = int_flag(f, "input-len", 0, 1);
  } else if (f.has("input-len")) {
    throw InvalidArgument("input-len", "--input-len does not apply to --dataset prompts");
  }
  c.prefix_len = int_flag(f, "prefix-len", 0, 0);
  c.tokenizer_dir = f.str("tokenizer", "");
  if (f.has("tokenizer") && c.tokenizer_dir.empty())
    throw InvalidArgument("tokenizer", "flag --tokenizer needs a directory");
  c.request_rate = rate_flag(f);
  c.max_concurrency = f.has("max-concurrency") ? int_flag(f, "max-concurrency", 0, 1) : 0;
  const int64_t seed = f.i64("seed", 0);
  if (seed < 0) throw InvalidArgument("seed", "flag --seed must be >= 0");
  c.seed = static_cast<uint64_t>(seed);
  c.command_line = command_line(args);
  return p;
}

int run_bench_serve(const std::vector<std::string>& args) {
  Parsed p;
  try {
    p = parse(args);
  } catch (const InvalidArgument& e) {
    std::fprintf(stderr, "herd bench serve: %s\nusage: herd bench serve %s\n", e.what(), kUsage);
    return 2;
  }
  // With --json - the JSON owns stdout, so the table goes to stderr.
  const std::string& json_path = p.json_path;
  std::FILE* table = json_path == "-" ? stderr : stdout;
  nlohmann::ordered_json result;
  try {
    result = bench::run_serve_bench(p.cfg, table);
  } catch (const InvalidArgument& e) {
    std::fprintf(stderr, "herd bench serve: %s\nusage: herd bench serve %s\n", e.what(), kUsage);
    return 2;
  }
  if (json_path == "-") {
    std::printf("%s\n", result.dump(2).c_str());
  } else if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << result.dump(2) << "\n";
    if (!out) throw Error("cannot write --json file '" + json_path + "'");
  }
  return result["completed"].get<int>() > 0 ? 0 : 1;
}

HERD_COMMAND("bench serve", kUsage, run_bench_serve);

}  // namespace
}  // namespace herd::cli

#endif  // HERD_HAVE_BENCH_CLIENT
