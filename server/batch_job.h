// One OpenAI Batch input file run to the end, resumably: shared by `herd batch` (cli) and the
// /v1/batches worker (server/batch_service.h).
//
// validate_batch_input() reads the whole file first: it counts the requests, finds duplicate
// custom_ids (which reject the whole job: the output could not say which line a result
// answers) and collects the lines that cannot be run and name no custom_id (not JSON, no
// custom_id), which no output line can carry: they are reported with their line numbers
// (`herd batch` on stderr and in its summary; /v1/batches in the batch's `errors`).
//
// run_batch_job() then answers every line not already in the journals (keyed by custom_id), in
// completion order: status 200 to `out`, anything else (an error status, or a line with a
// custom_id that is not a valid request) to `err`. Rerunning after a kill skips what is done.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/jobs/result_journal.h"
#include "server/batch_runner.h"

namespace herd::server {

struct BatchInputProblem {
  int64_t line = 0;
  std::string code;  // invalid_json, missing_required_parameter, duplicate_custom_id, ...
  std::string message;
};

struct BatchValidation {
  int64_t requests = 0;                     // lines with a custom_id (runnable or not)
  std::vector<BatchInputProblem> unusable;  // lines with no custom_id: reported, skipped
  std::vector<BatchInputProblem> duplicates;
  ordered_json problems_json() const;  // [{"code", "message", "param", "line"}] (OpenAI errors)
};

BatchValidation validate_batch_input(const std::string& path, const std::string& endpoint,
                                     size_t max_line_bytes);

struct BatchJobSpec {
  std::string input;
  std::string endpoint;  // "" = either endpoint, per line
  size_t max_line_bytes = 16u << 20;
  int max_in_flight = 64;
};

// `err` may be `out` (one file for both). `on_result` sees every line written by this run
// (ok = it went to `out`), after it was written. Returns true when every line is answered,
// false when `stop` turned true first.
bool run_batch_job(HttpContext& ctx, const BatchJobSpec& spec, ResultJournal& out,
                   ResultJournal& err, const std::atomic<bool>& stop,
                   const std::function<void(const ordered_json& line, bool ok)>& on_result);

// Writes a `batch_expired` error line to `err` for every line with a custom_id that neither
// journal holds yet (the requests an expired batch never answered); returns how many.
int64_t expire_batch_job(const BatchJobSpec& spec, ResultJournal& out, ResultJournal& err);

}  // namespace herd::server
