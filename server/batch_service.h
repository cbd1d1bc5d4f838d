// /v1/batches: OpenAI batch objects stored under `--state-dir` (DIR/batches/<id>.json, replaced
// atomically on every change) and one background worker that runs them, oldest first, through
// run_batch_job (server/batch_job.h) at kBatchPriority: the scheduler admits a batch request
// only after every waiting interactive one, and at most `max_in_flight` batch requests are in
// the engine at once, so interactive traffic keeps most of the queue (max_waiting) and batch.
//
// Statuses: validating (queued; the input is read and checked when the worker takes it) ->
// in_progress -> finalizing -> completed; failed (input missing, duplicate custom_ids, or an
// I/O error); cancelling -> cancelled (POST .../cancel: the requests in flight are aborted,
// what was answered stays in the output files). The output and error files are appended line by
// line while the batch runs (engine/jobs/result_journal.h) and published as /v1/files objects
// (purpose batch_output) when it ends. A server stopped or killed mid-batch resumes it on the
// next start with the same --state-dir: answered custom_ids are skipped, none is written twice.
// Expiry: a batch still validating or in_progress at its expires_at (created_at + the server's
// --batch-expiry, 24 h by default) becomes `expired`: its requests in flight are aborted, every
// request not answered gets a `batch_expired` line in the error file, and what was answered
// stays in the output file (OpenAI's behaviour). A batch queued behind another is expired when
// the worker reaches it; the running one is stopped at its deadline by a watchdog thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "server/engine_client.h"
#include "server/file_store.h"
#include "server/http_context.h"

namespace herd::server {

class BatchService {
 public:
  // `ctx`: the server's (tokenizer, options, model name, request log); requests are submitted
  // through a client of their own at kBatchPriority. Loads the stored batches; start() resumes.
  BatchService(HttpContext& ctx, const std::string& state_dir, int max_in_flight,
               int64_t expiry_s = 24 * 3600);
  ~BatchService();

  void start();
  // Stops the worker: the batch requests in flight are aborted; a batch in progress stays so on
  // disk and is resumed by the next start. Idempotent.
  void stop();

  FileStore& files() { return files_; }

  // POST /v1/batches body -> the new batch object. Throws InvalidArgument / HttpError.
  ordered_json create(const nlohmann::json& body);
  std::optional<ordered_json> get(const std::string& id) const;
  // Newest first; `after`: a batch id (the page starts after it).
  ordered_json list(int limit, const std::string& after) const;
  // Throws HttpError 404 (no such batch) or 400 (already ended).
  ordered_json cancel(const std::string& id);

 private:
  struct Record {
    ordered_json obj;                     // OpenAI's batch object
    int64_t seq = 0;                      // creation order (created_at has 1 s resolution)
    std::string output_file, error_file;  // ids of the journals, fixed when the batch starts
  };
  void loop();
  void process(const std::string& id);
  void run(const std::string& id);
  void finish(const std::string& id, const std::string& status);
  void expire(const std::string& id);
  bool overdue(const std::string& id) const;
  bool stopping() const;
  void watch_expiry();  // the watchdog: stops the running batch at its expires_at
  void fail(const std::string& id, const std::string& code, const std::string& message);
  void persist_locked(const Record& r);
  static ordered_json public_json(const Record& r);
  std::string status_of(const std::string& id) const;

  HttpContext& ctx_;
  std::string dir_;
  int max_in_flight_;
  int64_t expiry_s_;
  FileStore files_;
  EngineClient client_;
  std::atomic<bool> draining_{false};
  HttpContext batch_ctx_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Record> batches_;
  int64_t next_seq_ = 0;
  std::string current_;                // the batch the worker runs
  std::atomic<bool> run_stop_{false};  // stop the current run (cancel, shutdown or expiry)
  bool stopping_ = false;
  std::thread worker_;
  std::thread expiry_watch_;
};

}  // namespace herd::server
