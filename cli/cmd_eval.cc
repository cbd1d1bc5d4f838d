// herd eval fp8: the FP8 quality report (engine/eval/fp8_eval.h). stdout: the JSON report
// (also written to --json FILE); stderr: progress and a few plain lines; --svg FILE: the two
// reward-score distributions (with --reward).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/flags.h"
#include "engine/api/backend_factory.h"
#include "engine/common/error.h"
#include "engine/eval/fp8_eval.h"
#include "engine/eval/score_plot_svg.h"

namespace herd::cli {
namespace {

// One prompt per non-empty line.
std::vector<std::string> read_prompts(const std::string& path) {
  if (path == "built-in") return eval::default_eval_prompts();
  std::ifstream in(path);
  if (!in) throw InvalidArgument("prompts", path + ": cannot open (--prompts)");
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  if (out.empty()) throw InvalidArgument("prompts", path + ": no prompts (one per line)");
  return out;
}

void write_text(const std::string& path, const std::string& text, const char* flag) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f) throw Error(path + ": cannot write (" + flag + ")");
}

int run_eval_fp8(const std::vector<std::string>& args) {
  Flags f(args,
          {"model", "prompts", "reward", "max-tokens", "samples", "temperature", "seed",
           "activation-scale-ub", "svg", "json", "device", "threads", "dtype"},
          {"baseline-only"});
  if (!f.positional().empty())
    throw InvalidArgument("", "unexpected argument '" + f.positional()[0] + "'");
  eval::Fp8EvalOptions o;
  o.model_dir = f.required("model");
  o.prompts = read_prompts(f.str("prompts", "built-in"));
  o.reward_dir = f.str("reward", "");
  const int64_t max_tokens = f.i64("max-tokens", 32), samples = f.i64("samples", 4);
  if (max_tokens < 1 || max_tokens > 4096)
    throw InvalidArgument("max-tokens", "--max-tokens must be in [1, 4096]");
  if (samples < 1 || samples > 1024)
    throw InvalidArgument("samples", "--samples must be in [1, 1024]");
  o.max_tokens = int(max_tokens);
  o.samples = int(samples);
  o.temperature = f.f64("temperature", 1.0);
  if (!(o.temperature >= 0)) throw InvalidArgument("temperature", "--temperature must be >= 0");
  const int64_t seed = f.i64("seed", 0);
  if (seed < 0) throw InvalidArgument("seed", "--seed must be >= 0");
  o.seed = uint64_t(seed);
  // "inf" or 0: uncapped (to see what the cap prevents).
  const std::string ub = f.str("activation-scale-ub", "1200");
  if (ub == "inf" || ub == "0") {
    o.activation_scale_ub = 0.0f;
  } else {
    const double v = f.f64("activation-scale-ub", 1200);
    if (!(v > 0 && v < 1e30))
      throw InvalidArgument("activation-scale-ub", "--activation-scale-ub must be > 0 or inf");
    o.activation_scale_ub = float(v);
  }
  o.baseline_only = f.has("baseline-only");
  const std::string dtype = f.str("dtype", "as-stored");
  if (dtype != "as-stored" && dtype != "bf16")
    throw InvalidArgument("dtype", "--dtype takes as-stored or bf16, got '" + dtype + "'");
  o.reference_bf16 = dtype == "bf16";
  const int64_t threads = f.i64("threads", 0);
  if (threads < 0) throw InvalidArgument("threads", "--threads must be >= 0");
  const std::string svg = f.str("svg", ""), json_out = f.str("json", "");
  if (!svg.empty() && o.reward_dir.empty())
    throw InvalidArgument("svg", "--svg plots reward scores: give --reward DIR too");

  auto backend = make_backend(f.str("device", "cpu"), int(threads));
  const eval::Fp8EvalResult res = eval::run_fp8_eval(*backend, o, stderr);
  // Continuations of random or tiny models may end inside a UTF-8 sequence: such bytes become
  // U+FFFD rather than failing the report.
  const std::string text =
      res.report.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  if (!json_out.empty()) write_text(json_out, text, "--json");
  if (!svg.empty()) {
    const std::string title = "Reward scores of " + std::to_string(res.reference_scores.size()) +
                              " responses per model: " + o.model_dir;
    write_text(svg,
               eval::score_distribution_svg(
                   title, {{"reference (" + res.report["reference"].get<std::string>() + ")",
                            "#1f77b4", res.reference_scores},
                           {o.baseline_only ? "baseline again" : "FP8 row-wise", "#d62728",
                            res.candidate_scores}}),
               "--svg");
  }
  const auto& r = res.report;
  std::fprintf(stderr,
               "herd eval fp8: %lld tokens: KL mean %.3g p99 %.3g max %.3g nats, top-1 "
               "agreement %.1f%%, greedy agreement mean %.1f min %.0f tokens\n",
               static_cast<long long>(r["tokens_compared"].get<int64_t>()),
               r["kl"]["mean"].get<double>(), r["kl"]["p99"].get<double>(),
               r["kl"]["max"].get<double>(), 100 * r["top1_agreement"].get<double>(),
               r["greedy_agreement"]["mean"].get<double>(),
               r["greedy_agreement"]["min"].get<double>());
  for (const auto& c : r["activation_cap"])
    std::fprintf(stderr,
                 "herd eval fp8: cap demo (%s, outlier %g): ordinary values flushed to 0: "
                 "capped %.1f%% / uncapped %.1f%%; ordinary-channel output error capped %.3g / "
                 "uncapped %.3g\n",
                 c["weight"].get<std::string>().c_str(), c["outlier"].get<double>(),
                 100 * c["capped"]["ordinary_underflow_fraction"].get<double>(),
                 100 * c["uncapped"]["ordinary_underflow_fraction"].get<double>(),
                 c["capped"]["ordinary_channels_rel_error"].get<double>(),
                 c["uncapped"]["ordinary_channels_rel_error"].get<double>());
  std::cout << text;
  return 0;
}

// herd eval <kind>, dispatched like herd bench <kind>: each evaluation registers "eval <kind>".
int run_eval(const std::vector<std::string>& args) {
  const auto& cmds = commands();
  auto it = args.empty() ? cmds.end() : cmds.find("eval " + args[0]);
  if (it == cmds.end()) {
    std::fprintf(stderr, "usage: herd eval <kind> [flags]\n\nkinds:\n");
    for (const auto& [name, cmd] : cmds)
      if (name.rfind("eval ", 0) == 0)
        std::fprintf(stderr, "  %-16s %s\n", name.c_str() + 5, cmd.usage.c_str());
    return 2;
  }
  return it->second.run(std::vector<std::string>(args.begin() + 1, args.end()));
}

HERD_COMMAND("eval", "<fp8> [flags]   (quality reports; herd eval fp8 --help)", run_eval);
HERD_COMMAND("eval fp8",
             "--model DIR [--prompts FILE|built-in] [--reward DIR] [--max-tokens 32] "
             "[--samples 4] [--temperature 1] [--seed 0] [--activation-scale-ub 1200|inf] "
             "[--dtype as-stored|bf16] "
             "[--baseline-only] [--svg out.svg] [--json out.json] [--device cpu] [--threads N]",
             run_eval_fp8);

}  // namespace
}  // namespace herd::cli
