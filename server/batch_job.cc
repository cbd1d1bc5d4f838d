#include "server/batch_job.h"

#include <unordered_map>

#include "engine/jobs/jsonl_input.h"

namespace herd::server {

ordered_json BatchValidation::problems_json() const {
  ordered_json data = ordered_json::array();
  auto add = [&](const BatchInputProblem& p, const char* param) {
    ordered_json e{{"code", p.code}, {"message", p.message}};
    e["param"] = param ? ordered_json(param) : ordered_json(nullptr);
    e["line"] = p.line;
    data.push_back(std::move(e));
  };
  for (const auto& p : duplicates) add(p, "custom_id");
  for (const auto& p : unusable) add(p, nullptr);
  return data;
}

BatchValidation validate_batch_input(const std::string& path, const std::string& endpoint,
                                     size_t max_line_bytes) {
  BatchValidation v;
  JsonlInput in(path, max_line_bytes);
  std::unordered_map<std::string, int64_t> first_line;
  while (auto l = in.next()) {
    std::string custom_id;
    if (!l->ok()) {
      v.unusable.push_back({l->line_no, "invalid_json", l->error});
      continue;
    }
    try {
      custom_id = parse_batch_line(l->value, l->line_no, endpoint).custom_id;
    } catch (const BatchLineError& e) {
      if (e.custom_id.empty()) {
        v.unusable.push_back({l->line_no, e.code, e.what()});
        continue;
      }
      custom_id = e.custom_id;
    }
    ++v.requests;
    auto [it, fresh] = first_line.emplace(custom_id, l->line_no);
    if (!fresh)
      v.duplicates.push_back({l->line_no, "duplicate_custom_id",
                              "custom_id '" + custom_id + "' is also on line " +
                                  std::to_string(it->second) + "; custom_ids must be unique"});
  }
  return v;
}

bool run_batch_job(HttpContext& ctx, const BatchJobSpec& spec, ResultJournal& out,
                   ResultJournal& err, const std::atomic<bool>& stop,
                   const std::function<void(const ordered_json& line, bool ok)>& on_result) {
  JsonlInput in(spec.input, spec.max_line_bytes);
  auto done = [&](const std::string& id) { return out.done(id) || err.done(id); };
  auto next = [&]() -> std::optional<BatchLine> {
    while (auto l = in.next()) {
      if (!l->ok()) continue;  // reported by validate_batch_input
      try {
        BatchLine b = parse_batch_line(l->value, l->line_no, spec.endpoint);
        if (!done(b.custom_id)) return b;
      } catch (const BatchLineError& e) {
        if (e.custom_id.empty() || done(e.custom_id)) continue;
        ordered_json line = batch_error_line(e.custom_id, e.code, e.what(), l->line_no);
        err.append_ordered(line);
        on_result(line, false);
      }
    }
    return std::nullopt;
  };
  BatchRunner runner(ctx, spec.max_in_flight);
  return runner.run(
      next,
      [&](const BatchResult& r) {
        (r.ok ? out : err).append_ordered(r.out);
        on_result(r.out, r.ok);
      },
      stop);
}

int64_t expire_batch_job(const BatchJobSpec& spec, ResultJournal& out, ResultJournal& err) {
  JsonlInput in(spec.input, spec.max_line_bytes);
  int64_t expired = 0;
  while (auto l = in.next()) {
    if (!l->ok()) continue;  // no custom_id to answer: reported by validate_batch_input
    std::string custom_id;
    try {
      custom_id = parse_batch_line(l->value, l->line_no, spec.endpoint).custom_id;
    } catch (const BatchLineError& e) {
      custom_id = e.custom_id;
    }
    if (custom_id.empty() || out.done(custom_id) || err.done(custom_id)) continue;
    // OpenAI's code and wording for a request its batch's window ran out on.
    err.append_ordered(batch_error_line(
        custom_id, "batch_expired",
        "This request could not be executed before the completion window expired.", l->line_no));
    ++expired;
  }
  return expired;
}

}  // namespace herd::server
