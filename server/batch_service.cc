#include "server/batch_service.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "engine/common/error.h"
#include "server/batch_job.h"
#include "server/state_files.h"

namespace herd::server {

namespace {
bool active(const std::string& status) {
  return status == "validating" || status == "in_progress" || status == "finalizing" ||
         status == "cancelling";
}

ordered_json new_batch_object(const std::string& id, const std::string& endpoint,
                              const std::string& input_file_id, const nlohmann::json& metadata,
                              int64_t expiry_s) {
  const int64_t now = unix_now();
  ordered_json b;
  b["id"] = id;
  b["object"] = "batch";
  b["endpoint"] = endpoint;
  b["errors"] = nullptr;
  b["input_file_id"] = input_file_id;
  b["completion_window"] = "24h";
  b["status"] = "validating";
  b["output_file_id"] = nullptr;
  b["error_file_id"] = nullptr;
  b["created_at"] = now;
  b["in_progress_at"] = nullptr;
  b["expires_at"] = now + expiry_s;
  b["finalizing_at"] = nullptr;
  b["completed_at"] = nullptr;
  b["failed_at"] = nullptr;
  b["expired_at"] = nullptr;
  b["cancelling_at"] = nullptr;
  b["cancelled_at"] = nullptr;
  b["request_counts"] = ordered_json{{"total", 0}, {"completed", 0}, {"failed", 0}};
  b["metadata"] = metadata.is_null() ? ordered_json(nullptr) : ordered_json::parse(metadata.dump());
  return b;
}

HttpError not_found(const std::string& id) {
  return HttpError{404, "No batch found with id '" + id + "'.", "invalid_request_error", "",
                   "not_found"};
}
}  // namespace

BatchService::BatchService(HttpContext& ctx, const std::string& state_dir, int max_in_flight,
                           int64_t expiry_s)
    : ctx_(ctx),
      dir_(state_dir + "/batches"),
      max_in_flight_(max_in_flight),
      expiry_s_(expiry_s),
      files_(state_dir),
      client_(ctx.client.engine(), ctx.client.metrics(), kBatchPriority),
      batch_ctx_{client_,           ctx.tok, ctx.opts, ctx.model_name,
                 ctx.max_model_len, ctx.log, draining_} {
  make_dirs(dir_);
  for (const auto& name : list_files(dir_, ".json")) {
    auto text = read_file(dir_ + "/" + name);
    if (!text) continue;
    auto j = ordered_json::parse(*text, nullptr, false);
    if (!j.is_object() || !j.contains("batch") || !j["batch"].is_object()) {
      std::fprintf(stderr, "herd serve: ignoring the unreadable batch record %s/%s\n", dir_.c_str(),
                   name.c_str());
      continue;
    }
    Record r;
    r.obj = j["batch"];
    r.seq = j.value("seq", int64_t(0));
    r.output_file = j.value("output_file", "");
    r.error_file = j.value("error_file", "");
    next_seq_ = std::max(next_seq_, r.seq + 1);
    batches_[r.obj.value("id", "")] = std::move(r);
  }
}

BatchService::~BatchService() { stop(); }

void BatchService::start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (worker_.joinable() || stopping_) return;
  int resumed = 0;
  for (const auto& [id, r] : batches_) resumed += active(r.obj.value("status", "")) ? 1 : 0;
  if (resumed > 0)
    std::fprintf(stderr, "herd serve: resuming %d unfinished batch(es) from %s\n", resumed,
                 dir_.c_str());
  worker_ = std::thread([this] { loop(); });
  expiry_watch_ = std::thread([this] { watch_expiry(); });
}

void BatchService::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    run_stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  if (expiry_watch_.joinable()) expiry_watch_.join();
}

void BatchService::persist_locked(const Record& r) {
  ordered_json j{{"batch", r.obj}, {"seq", r.seq}};
  j["output_file"] = r.output_file;
  j["error_file"] = r.error_file;
  write_file_atomic(dir_ + "/" + r.obj["id"].get<std::string>() + ".json", to_json_text(j));
}

ordered_json BatchService::public_json(const Record& r) { return r.obj; }

std::string BatchService::status_of(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = batches_.find(id);
  return it == batches_.end() ? "" : it->second.obj["status"].get<std::string>();
}

ordered_json BatchService::create(const nlohmann::json& body) {
  if (!body.is_object()) throw InvalidArgument("", "The request body must be a JSON object");
  auto str = [&](const char* name) {
    auto it = body.find(name);
    if (it == body.end() || it->is_null())
      throw InvalidArgument(name, std::string("'").append(name).append("' is required"));
    if (!it->is_string())
      throw InvalidArgument(name, std::string("'").append(name).append("' must be a string"));
    return it->get<std::string>();
  };
  const std::string input = str("input_file_id");
  const std::string endpoint = str("endpoint");
  if (endpoint != "/v1/chat/completions" && endpoint != "/v1/completions")
    throw InvalidArgument("endpoint", "'endpoint' must be /v1/chat/completions or /v1/completions");
  if (str("completion_window") != "24h")
    throw InvalidArgument("completion_window", "'completion_window' must be 24h");
  nlohmann::json metadata = body.value("metadata", nlohmann::json());
  if (!metadata.is_null()) {
    if (!metadata.is_object() || metadata.size() > 16)
      throw InvalidArgument("metadata", "'metadata' must be an object of at most 16 strings");
    for (const auto& [k, v] : metadata.items())
      if (!v.is_string() || k.size() > 64 || v.get<std::string>().size() > 512)
        throw InvalidArgument("metadata",
                              "'metadata' values must be strings (keys <= 64, values <= 512 "
                              "characters)");
  }
  auto file = files_.get(input);
  if (!file)
    throw HttpError{404, "No file found with id '" + input + "'.", "invalid_request_error",
                    "input_file_id", "not_found"};
  if (file->purpose != "batch")
    throw InvalidArgument("input_file_id", "the input file's purpose must be 'batch'");
  Record r;
  r.obj = new_batch_object(new_request_id("batch_"), endpoint, input, metadata, expiry_s_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    r.seq = next_seq_++;
    persist_locked(r);
    batches_[r.obj["id"].get<std::string>()] = r;
  }
  cv_.notify_all();
  return public_json(r);
}

std::optional<ordered_json> BatchService::get(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = batches_.find(id);
  if (it == batches_.end()) return std::nullopt;
  return public_json(it->second);
}

ordered_json BatchService::list(int limit, const std::string& after) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<const Record*> all;
  for (const auto& [id, r] : batches_) all.push_back(&r);
  std::sort(all.begin(), all.end(),
            [](const Record* a, const Record* b) { return a->seq > b->seq; });
  size_t start = 0;
  if (!after.empty()) {
    auto it = batches_.find(after);
    if (it == batches_.end())
      throw InvalidArgument("after", "'after' names no batch ('" + after + "')");
    while (start < all.size() && all[start] != &it->second) ++start;
    ++start;
  }
  ordered_json data = ordered_json::array();
  for (size_t i = start; i < all.size() && data.size() < static_cast<size_t>(limit); ++i)
    data.push_back(public_json(*all[i]));
  ordered_json out;
  out["object"] = "list";
  out["data"] = data;
  out["first_id"] = data.empty() ? ordered_json(nullptr) : data.front()["id"];
  out["last_id"] = data.empty() ? ordered_json(nullptr) : data.back()["id"];
  out["has_more"] = start + data.size() < all.size();
  return out;
}

ordered_json BatchService::cancel(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = batches_.find(id);
  if (it == batches_.end()) throw not_found(id);
  Record& r = it->second;
  const std::string status = r.obj["status"].get<std::string>();
  if (status == "cancelling" || status == "cancelled") return public_json(r);
  if (!active(status))
    throw HttpError{400, "Cannot cancel a batch that is " + status + ".", "invalid_request_error",
                    "", "batch_not_cancellable"};
  r.obj["status"] = "cancelling";
  r.obj["cancelling_at"] = unix_now();
  persist_locked(r);
  if (current_ == id) run_stop_ = true;
  cv_.notify_all();
  return public_json(r);
}

void BatchService::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    const Record* next = nullptr;
    for (const auto& [id, r] : batches_)
      if (active(r.obj["status"].get<std::string>()) && (!next || r.seq < next->seq)) next = &r;
    if (!next) {
      cv_.wait(lock);
      continue;
    }
    current_ = next->obj["id"].get<std::string>();
    run_stop_ = false;
    const std::string id = current_;
    cv_.notify_all();  // the watchdog now watches this batch's deadline
    lock.unlock();
    try {
      process(id);
    } catch (const std::exception& e) {
      fail(id, "server_error", std::string("the batch failed: ").append(e.what()));
    }
    lock.lock();
    current_.clear();
    cv_.notify_all();
  }
}

void BatchService::watch_expiry() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    auto it = current_.empty() ? batches_.end() : batches_.find(current_);
    if (it == batches_.end()) {
      cv_.wait(lock);
      continue;
    }
    const std::string id = current_;
    const int64_t at = it->second.obj["expires_at"].get<int64_t>();
    if (unix_now() < at) {
      cv_.wait_until(lock, std::chrono::system_clock::from_time_t(static_cast<time_t>(at)));
      continue;  // woken early (another batch, shutdown) or on time: look again
    }
    // Stop the run; the worker sees the batch overdue and expires it (only the worker writes
    // the journals). Then wait for it to move on, so the stop is not repeated on a new run.
    run_stop_ = true;
    cv_.wait(lock, [&] { return stopping_ || current_ != id; });
  }
}

bool BatchService::stopping() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

bool BatchService::overdue(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  const Record& r = batches_.at(id);
  return unix_now() >= r.obj["expires_at"].get<int64_t>();
}

void BatchService::expire(const std::string& id) {
  BatchJobSpec spec;
  std::string out_id, err_id;
  bool have_input = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Record& r = batches_.at(id);
    const std::string input = r.obj["input_file_id"].get<std::string>();
    have_input = files_.get(input).has_value();
    spec.input = files_.data_path(input);
    spec.endpoint = r.obj["endpoint"].get<std::string>();
    if (r.output_file.empty()) {  // expired before it was validated
      r.output_file = FileStore::new_id();
      r.error_file = FileStore::new_id();
    }
    out_id = r.output_file;
    err_id = r.error_file;
    persist_locked(r);
  }
  spec.max_line_bytes = ctx_.opts.max_body_bytes;
  ResultJournal out(files_.data_path(out_id), "custom_id");
  ResultJournal err(files_.data_path(err_id), "custom_id");
  if (have_input) expire_batch_job(spec, out, err);
  {
    std::lock_guard<std::mutex> lock(mu_);
    Record& r = batches_.at(id);
    const int64_t unusable =
        r.obj["errors"].is_object() ? static_cast<int64_t>(r.obj["errors"]["data"].size()) : 0;
    auto& counts = r.obj["request_counts"];
    counts["completed"] = out.num_done();
    counts["failed"] = err.num_done() + unusable;
    counts["total"] =
        std::max(counts["total"].get<int64_t>(), out.num_done() + err.num_done() + unusable);
  }
  finish(id, "expired");
}

void BatchService::fail(const std::string& id, const std::string& code,
                        const std::string& message) {
  std::lock_guard<std::mutex> lock(mu_);
  Record& r = batches_.at(id);
  r.obj["status"] = "failed";
  r.obj["failed_at"] = unix_now();
  ordered_json data = r.obj["errors"].is_object() ? r.obj["errors"]["data"] : ordered_json::array();
  data.push_back(
      ordered_json{{"code", code}, {"message", message}, {"param", nullptr}, {"line", nullptr}});
  r.obj["errors"] = ordered_json{{"object", "list"}, {"data", data}};
  persist_locked(r);
}

void BatchService::process(const std::string& id) {
  std::string status = status_of(id);
  if ((status == "validating" || status == "in_progress") && overdue(id)) return expire(id);
  if (status == "validating") {
    std::string input, endpoint;
    {
      std::lock_guard<std::mutex> lock(mu_);
      input = batches_.at(id).obj["input_file_id"].get<std::string>();
      endpoint = batches_.at(id).obj["endpoint"].get<std::string>();
    }
    if (!files_.get(input)) return fail(id, "file_not_found", "the input file was deleted");
    BatchValidation v =
        validate_batch_input(files_.data_path(input), endpoint, ctx_.opts.max_body_bytes);
    std::lock_guard<std::mutex> lock(mu_);
    Record& r = batches_.at(id);
    if (r.obj["status"] != "validating") return;  // cancelled meanwhile: the loop finishes it
    const int64_t total = v.requests + static_cast<int64_t>(v.unusable.size());
    if (!v.duplicates.empty() || total == 0) {
      r.obj["status"] = "failed";
      r.obj["failed_at"] = unix_now();
      ordered_json data = v.problems_json();
      if (total == 0)
        data.push_back(ordered_json{{"code", "empty_file"},
                                    {"message", "the input file has no requests"},
                                    {"param", nullptr},
                                    {"line", nullptr}});
      r.obj["errors"] = ordered_json{{"object", "list"}, {"data", data}};
      persist_locked(r);
      return;
    }
    // Lines no output line can carry (no custom_id): OpenAI's batch `errors`, with line numbers.
    if (!v.unusable.empty())
      r.obj["errors"] = ordered_json{{"object", "list"}, {"data", v.problems_json()}};
    r.obj["status"] = "in_progress";
    r.obj["in_progress_at"] = unix_now();
    r.obj["request_counts"] = ordered_json{
        {"total", total}, {"completed", 0}, {"failed", static_cast<int64_t>(v.unusable.size())}};
    r.output_file = FileStore::new_id();
    r.error_file = FileStore::new_id();
    persist_locked(r);
    status = "in_progress";
  }
  if (status == "in_progress") return run(id);
  if (status == "finalizing") return finish(id, "completed");
  if (status == "cancelling") return finish(id, "cancelled");
}

void BatchService::run(const std::string& id) {
  BatchJobSpec spec;
  std::string out_id, err_id;
  int64_t unusable = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Record& r = batches_.at(id);
    spec.input = files_.data_path(r.obj["input_file_id"].get<std::string>());
    spec.endpoint = r.obj["endpoint"].get<std::string>();
    out_id = r.output_file;
    err_id = r.error_file;
    unusable =
        r.obj["errors"].is_object() ? static_cast<int64_t>(r.obj["errors"]["data"].size()) : 0;
  }
  spec.max_line_bytes = ctx_.opts.max_body_bytes;
  spec.max_in_flight = max_in_flight_;
  ResultJournal out(files_.data_path(out_id), "custom_id");
  ResultJournal err(files_.data_path(err_id), "custom_id");
  int64_t completed = out.num_done(), failed = err.num_done() + unusable;
  auto last_save = std::chrono::steady_clock::now();
  auto save_counts = [&](bool force) {
    auto now = std::chrono::steady_clock::now();
    if (!force && now - last_save < std::chrono::milliseconds(250)) return;
    last_save = now;
    std::lock_guard<std::mutex> lock(mu_);
    Record& r = batches_.at(id);
    r.obj["request_counts"]["completed"] = completed;
    r.obj["request_counts"]["failed"] = failed;
    persist_locked(r);
  };
  save_counts(true);
  const bool all =
      run_batch_job(batch_ctx_, spec, out, err, run_stop_, [&](const ordered_json&, bool ok) {
        ++(ok ? completed : failed);
        save_counts(false);
      });
  save_counts(true);
  if (all) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      Record& r = batches_.at(id);
      if (r.obj["status"] == "in_progress") {
        r.obj["status"] = "finalizing";
        r.obj["finalizing_at"] = unix_now();
        persist_locked(r);
      }
    }
    return finish(id, status_of(id) == "cancelling" ? "cancelled" : "completed");
  }
  if (status_of(id) == "cancelling") return finish(id, "cancelled");
  if (!stopping() && overdue(id)) return expire(id);
  // Stopped by shutdown: stays in_progress on disk; the next start resumes it (or expires it,
  // if its deadline passed meanwhile).
}

void BatchService::finish(const std::string& id, const std::string& status) {
  std::lock_guard<std::mutex> lock(mu_);
  Record& r = batches_.at(id);
  auto publish = [&](const std::string& file_id, const char* field, const char* kind) {
    if (file_id.empty()) return;
    std::error_code ec;
    auto size = std::filesystem::file_size(files_.data_path(file_id), ec);
    if (ec || size == 0) return;
    files_.adopt(file_id,
                 std::string("batch_").append(id).append("_").append(kind).append(".jsonl"),
                 "batch_output");
    r.obj[field] = file_id;
  };
  publish(r.output_file, "output_file_id", "output");
  publish(r.error_file, "error_file_id", "error");
  r.obj["status"] = status;
  r.obj[status + "_at"] = unix_now();  // completed_at, cancelled_at or expired_at
  persist_locked(r);
}

}  // namespace herd::server
