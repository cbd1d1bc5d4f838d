// `herd batch`: an OpenAI Batch input file (custom_id, method, url, body per line) run through
// the same request parsing and response building as `herd serve`'s routes (server/route_call.h),
// answered in OpenAI's batch output format. Incremental and resumable: every answer is one
// complete appended line (engine/jobs/result_journal.h); after a kill, rerunning the same
// command skips the custom_ids already answered. Exit status: 0 when every line was answered
// (some answers may be errors: see the summary), 1 on a fatal error, 2 on a usage error or an
// input rejected as a whole (duplicate custom_ids).
#ifdef HERD_HAVE_SERVER

#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "cli/command.h"
#include "cli/engine_flags.h"
#include "engine/api/engine.h"
#include "engine/jobs/job_progress.h"
#include "engine/jobs/result_journal.h"
#include "server/batch_job.h"
#include "server/engine_client.h"
#include "server/http_context.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/request_log.h"

namespace herd::cli {
namespace {

constexpr const char* kUsage =
    "--model DIR --input requests.jsonl --output results.jsonl [--errors errors.jsonl] "
    "[--served-model-name NAME] [--max-in-flight N (256)] [--max-line-bytes N (16 MiB)] "
    "[engine flags]";

int run_batch(const std::vector<std::string>& args) {
  Flags f(args,
          with_engine_value_flags({"input", "output", "errors", "served-model-name",
                                   "max-in-flight", "max-line-bytes"}),
          with_engine_switches({}));
  EngineOptions eo = engine_options_from_flags(f);
  server::BatchJobSpec spec;
  spec.input = f.required("input");
  const std::string output = f.required("output");
  const std::string errors = f.str("errors", "");
  const int64_t in_flight = f.i64("max-in-flight", 256);
  if (in_flight < 1 || in_flight > (1 << 20))
    throw InvalidArgument("max-in-flight", "flag --max-in-flight must be between 1 and 1048576");
  spec.max_in_flight = static_cast<int>(in_flight);
  const int64_t line_bytes = f.i64("max-line-bytes", 16 << 20);
  if (line_bytes < 1) throw InvalidArgument("max-line-bytes", "flag --max-line-bytes must be > 0");
  spec.max_line_bytes = static_cast<size_t>(line_bytes);
  if (errors == output)
    throw InvalidArgument("errors", "flag --errors must name another file than --output");

  // Read the whole input before loading the model: a rejected file costs nothing.
  server::BatchValidation v =
      server::validate_batch_input(spec.input, spec.endpoint, spec.max_line_bytes);
  for (const auto& p : v.duplicates)
    std::fprintf(stderr, "herd batch: %s:%lld: %s\n", spec.input.c_str(), (long long)p.line,
                 p.message.c_str());
  if (!v.duplicates.empty()) {
    std::fprintf(stderr, "herd batch: rejected: %zu duplicate custom_id(s); nothing was run\n",
                 v.duplicates.size());
    return 2;
  }
  for (const auto& p : v.unusable)
    std::fprintf(stderr, "herd batch: %s:%lld: skipped (%s): %s\n", spec.input.c_str(),
                 (long long)p.line, p.code.c_str(), p.message.c_str());

  ResultJournal out(output, "custom_id");
  std::unique_ptr<ResultJournal> err_file;
  if (!errors.empty()) err_file = std::make_unique<ResultJournal>(errors, "custom_id");
  ResultJournal& err = err_file ? *err_file : out;  // no --errors: one file for both
  const int64_t resumed = out.num_done() + (err_file ? err_file->num_done() : 0);
  if (resumed > 0)
    std::fprintf(stderr, "herd batch: resuming: %lld request(s) already answered%s\n",
                 (long long)resumed,
                 out.torn_lines_cut() + (err_file ? err_file->torn_lines_cut() : 0) > 0
                     ? " (a torn last line was cut)"
                     : "");

  std::unique_ptr<Engine> engine = Engine::create(eo);
  const std::string model_name =
      f.str("served-model-name", server::default_model_name(eo.model_dir));
  server::Metrics metrics(model_name);
  // Nothing competes with it here, but the same priority as the server's batches keeps the
  // requests identical to what /v1/batches would submit.
  server::EngineClient client(*engine, metrics, kBatchPriority);
  server::ServerOptions so;
  so.max_body_bytes = spec.max_line_bytes;
  server::RequestLog log(nullptr);  // the answers are the output file
  std::atomic<bool> draining{false};
  server::HttpContext ctx{
      client, engine->tokenizer(), so, model_name, engine->max_model_len(), log, draining};

  JobProgress progress(v.requests, resumed, stderr, isatty(fileno(stderr)) != 0);
  std::atomic<bool> stop{false};
  server::run_batch_job(ctx, spec, out, err, stop, [&](const server::ordered_json& line, bool ok) {
    if (ok)
      progress.add_done(server::batch_line_completion_tokens(line));
    else
      progress.add_failed();
  });
  progress.finish();
  engine->shutdown();

  nlohmann::json summary = progress.summary();
  summary["output"] = output;
  summary["errors"] = errors.empty() ? output : errors;
  summary["skipped_lines"] = nlohmann::json::parse(v.problems_json().dump());
  std::printf("%s\n", summary.dump().c_str());
  return 0;
}

HERD_COMMAND("batch", kUsage, run_batch);

}  // namespace
}  // namespace herd::cli

#endif  // HERD_HAVE_SERVER
