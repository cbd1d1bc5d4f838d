#include "server/batch_format.h"

#include <unordered_set>
#include <utility>
#include <vector>

#include "engine/common/error.h"
#include "server/engine_client.h"
#include "server/route_call.h"
#include "server/untrusted_json.h"

namespace herd::server {

namespace {
std::string string_field(const nlohmann::json& j, const char* name, const std::string& custom_id) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null())
    throw BatchLineError("missing_required_parameter",
                         std::string("the line has no '").append(name).append("'"), custom_id);
  if (!it->is_string())
    throw BatchLineError("invalid_request",
                         std::string("'").append(name).append("' must be a string"), custom_id);
  return it->get<std::string>();
}
}  // namespace

bool json_deeper_than(const nlohmann::json& j, int max_depth) {
  std::vector<std::pair<const nlohmann::json*, int>> todo{{&j, 1}};
  while (!todo.empty()) {
    auto [v, depth] = todo.back();
    todo.pop_back();
    if (!v->is_structured()) continue;
    if (depth > max_depth) return true;
    for (const auto& child : *v) todo.push_back({&child, depth + 1});
  }
  return false;
}

BatchLine parse_batch_line(const nlohmann::json& j, int64_t line_no, const std::string& endpoint) {
  if (!j.is_object()) throw BatchLineError("invalid_json", "the line is not a JSON object");
  // One level more than a request body may use: the body sits inside the line.
  if (json_deeper_than(j, kMaxJsonDepth + 1))
    throw BatchLineError("invalid_json", std::string("the line nests deeper than ")
                                             .append(std::to_string(kMaxJsonDepth + 1))
                                             .append(" levels"));
  BatchLine b;
  b.line = line_no;
  b.custom_id = string_field(j, "custom_id", "");
  if (b.custom_id.empty() || b.custom_id.size() > kMaxCustomIdBytes)
    throw BatchLineError("invalid_request",
                         std::string("'custom_id' must be 1 to ")
                             .append(std::to_string(kMaxCustomIdBytes))
                             .append(" bytes"),
                         b.custom_id.size() > kMaxCustomIdBytes ? "" : b.custom_id);
  const std::string method = string_field(j, "method", b.custom_id);
  if (method != "POST")
    throw BatchLineError("invalid_method", "'method' must be POST", b.custom_id);
  b.url = string_field(j, "url", b.custom_id);
  if (!is_batch_endpoint(b.url))
    throw BatchLineError("invalid_url", "'url' must be /v1/chat/completions or /v1/completions",
                         b.custom_id);
  if (!endpoint.empty() && b.url != endpoint)
    throw BatchLineError("mismatched_url", "'url' must be the batch's endpoint " + endpoint,
                         b.custom_id);
  auto body = j.find("body");
  if (body == j.end() || !body->is_object())
    throw BatchLineError("invalid_request", "'body' must be a JSON object", b.custom_id);
  b.body = *body;
  return b;
}

std::string new_batch_request_id() { return new_request_id("batch_req_"); }

ordered_json batch_response_line(const std::string& custom_id, int status_code,
                                 const std::string& request_id, const std::string& body_text) {
  ordered_json line;
  line["id"] = new_batch_request_id();
  line["custom_id"] = custom_id;
  ordered_json body = ordered_json::parse(body_text, nullptr, false);
  if (body.is_discarded()) body = body_text;
  line["response"] = ordered_json{
      {"status_code", status_code}, {"request_id", request_id}, {"body", std::move(body)}};
  line["error"] = nullptr;
  return line;
}

ordered_json batch_error_line(const std::string& custom_id, const std::string& code,
                              const std::string& message, int64_t line_no) {
  ordered_json line;
  line["id"] = new_batch_request_id();
  if (custom_id.empty())
    line["custom_id"] = nullptr;
  else
    line["custom_id"] = custom_id;
  line["response"] = nullptr;
  line["error"] = ordered_json{{"code", code}, {"message", message}, {"line", line_no}};
  return line;
}

std::vector<std::string> duplicate_ids(const std::vector<std::string>& ids) {
  std::unordered_set<std::string> seen, reported;
  std::vector<std::string> dups;
  for (const auto& id : ids)
    if (!seen.insert(id).second && reported.insert(id).second) dups.push_back(id);
  return dups;
}

int64_t batch_line_completion_tokens(const ordered_json& line) {
  const auto& r = line.value("response", ordered_json());
  if (!r.is_object() || !r.contains("body") || !r["body"].is_object()) return 0;
  const auto& u = r["body"].value("usage", ordered_json());
  if (!u.is_object() || !u.contains("completion_tokens") ||
      !u["completion_tokens"].is_number_integer())
    return 0;
  return u["completion_tokens"].get<int64_t>();
}

}  // namespace herd::server
