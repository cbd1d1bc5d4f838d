#include "server/batch_routes.h"

#include <map>

#include "engine/common/error.h"
#include "server/batch_service.h"
#include "server/multipart.h"
#include "server/state_files.h"

namespace herd::server {

namespace {
const std::string kFiles = "/v1/files";
const std::string kBatches = "/v1/batches";

bool under(const std::string& path, const std::string& prefix) {
  return path == prefix || path.rfind(prefix + "/", 0) == 0;
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string url_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> query_params(const std::string& target) {
  std::map<std::string, std::string> q;
  size_t qm = target.find('?');
  if (qm == std::string::npos) return q;
  std::string rest = target.substr(qm + 1);
  size_t pos = 0;
  while (pos <= rest.size()) {
    size_t amp = rest.find('&', pos);
    std::string kv = rest.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    size_t eq = kv.find('=');
    if (!kv.empty())
      q[url_decode(kv.substr(0, eq))] =
          eq == std::string::npos ? "" : url_decode(kv.substr(eq + 1));
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return q;
}

int limit_param(const std::map<std::string, std::string>& q, int def, int max) {
  auto it = q.find("limit");
  if (it == q.end()) return def;
  try {
    size_t used = 0;
    int v = std::stoi(it->second, &used);
    if (used == it->second.size() && v >= 1 && v <= max) return v;
  } catch (const std::exception&) {
  }
  throw InvalidArgument("limit", "'limit' must be an integer from 1 to " + std::to_string(max));
}

HttpError method_not_allowed(const HttpRequest& req) {
  return HttpError{405, "Method not allowed: " + req.method + " " + req.path,
                   "invalid_request_error", "", "method_not_allowed"};
}

HttpError file_not_found(const std::string& id) {
  return HttpError{404, "No file found with id '" + id + "'.", "invalid_request_error", "",
                   "not_found"};
}

void upload(BatchService& s, const HttpRequest& req, HttpResponse& res) {
  auto boundary = multipart_boundary(req.header("Content-Type"));
  if (!boundary)
    throw InvalidArgument("file",
                          "files are uploaded as multipart/form-data (fields: file, purpose)");
  std::string purpose;
  const FormPart* file = nullptr;
  auto parts = parse_multipart(req.body, *boundary);
  for (const auto& p : parts) {
    if (p.name == "purpose") purpose = p.data;
    if (p.name == "file") file = &p;
  }
  if (purpose.empty()) throw InvalidArgument("purpose", "'purpose' is required");
  if (purpose != "batch")
    throw InvalidArgument("purpose", "'purpose' must be 'batch' (the only purpose herd serves)");
  if (!file) throw InvalidArgument("file", "'file' is required");
  std::string name = file->filename.value_or("upload.jsonl");
  if (name.size() > 255) name.resize(255);
  send_json(res, 200, s.files().add(name, purpose, file->data).json());
}

void files_route(BatchService& s, const HttpRequest& req, HttpResponse& res) {
  const std::string& path = req.path;
  if (path == kFiles) {
    if (req.method == "POST") return upload(s, req, res);
    if (req.method != "GET") throw method_not_allowed(req);
    auto q = query_params(req.target);
    const int limit = limit_param(q, 10000, 10000);
    ordered_json data = ordered_json::array();
    bool past_after = !q.count("after");
    size_t more = 0;
    for (const auto& f : s.files().list()) {
      if (!past_after) {
        past_after = f.id == q["after"];
        continue;
      }
      if (q.count("purpose") && f.purpose != q["purpose"]) continue;
      if (data.size() < static_cast<size_t>(limit))
        data.push_back(f.json());
      else
        ++more;
    }
    ordered_json out{{"object", "list"}, {"data", data}};
    out["first_id"] = data.empty() ? ordered_json(nullptr) : data.front()["id"];
    out["last_id"] = data.empty() ? ordered_json(nullptr) : data.back()["id"];
    out["has_more"] = more > 0;
    return send_json(res, 200, out);
  }
  std::string id = path.substr(kFiles.size() + 1);
  bool content = false;
  static const std::string kContent = "/content";
  if (id.size() > kContent.size() &&
      id.compare(id.size() - kContent.size(), kContent.size(), kContent) == 0) {
    content = true;
    id.resize(id.size() - kContent.size());
  }
  auto f = s.files().get(id);
  if (!f) throw file_not_found(id);
  if (content) {
    if (req.method != "GET") throw method_not_allowed(req);
    auto text = read_file(s.files().data_path(id));
    if (!text) throw file_not_found(id);
    res.status = 200;
    res.body = std::move(*text);
    res.content_type = "application/octet-stream";
    return;
  }
  if (req.method == "GET") return send_json(res, 200, f->json());
  if (req.method == "DELETE") {
    s.files().remove(id);
    return send_json(res, 200, ordered_json{{"id", id}, {"object", "file"}, {"deleted", true}});
  }
  throw method_not_allowed(req);
}

void batches_route(BatchService& s, const HttpRequest& req, HttpResponse& res) {
  const std::string& path = req.path;
  if (path == kBatches) {
    if (req.method == "POST") return send_json(res, 200, s.create(parse_body(req)));
    if (req.method != "GET") throw method_not_allowed(req);
    auto q = query_params(req.target);
    return send_json(res, 200, s.list(limit_param(q, 20, 100), q.count("after") ? q["after"] : ""));
  }
  std::string id = path.substr(kBatches.size() + 1);
  static const std::string kCancel = "/cancel";
  if (id.size() > kCancel.size() &&
      id.compare(id.size() - kCancel.size(), kCancel.size(), kCancel) == 0) {
    if (req.method != "POST") throw method_not_allowed(req);
    id.resize(id.size() - kCancel.size());
    return send_json(res, 200, s.cancel(id));
  }
  if (req.method != "GET") throw method_not_allowed(req);
  auto b = s.get(id);
  if (!b)
    throw HttpError{404, "No batch found with id '" + id + "'.", "invalid_request_error", "",
                    "not_found"};
  send_json(res, 200, *b);
}
}  // namespace

bool is_batch_api_path(const std::string& path) {
  return under(path, kFiles) || under(path, kBatches);
}

void handle_batch_api(HttpContext&, BatchService* service, const HttpRequest& req,
                      HttpResponse& res) {
  if (!service)
    throw HttpError{404,
                    "The Files and Batch APIs are off on this server: start herd serve with "
                    "--state-dir DIR to enable /v1/files and /v1/batches.",
                    "invalid_request_error", "", "batches_disabled"};
  if (under(req.path, kFiles)) return files_route(*service, req, res);
  batches_route(*service, req, res);
}

}  // namespace herd::server
