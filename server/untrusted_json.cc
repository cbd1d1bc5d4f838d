#include "server/untrusted_json.h"

#include <vector>

#include "engine/common/error.h"

namespace herd::server {

namespace {

using nlohmann::json;

// Path components shown in a param; keys longer than this are cut.
constexpr size_t kMaxParamComponents = 4;
constexpr size_t kMaxKeyChars = 64;

enum class Failure { kNone, kTooDeep, kOutOfRange, kSyntax };

// nlohmann's DOM builder plus a depth count and the path to the current value.
class BoundedSax {
 public:
  BoundedSax(json& root, int max_depth) : dom_(root, /*allow_exceptions=*/false), max_(max_depth) {}

  bool null() { return value() && dom_.null(); }
  bool boolean(bool v) { return value() && dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return value() && dom_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return value() && dom_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const json::string_t& s) {
    return value() && dom_.number_float(v, s);
  }
  bool string(json::string_t& v) { return value() && dom_.string(v); }
  bool binary(json::binary_t& v) { return value() && dom_.binary(v); }
  bool start_object(std::size_t n) { return open(false) && dom_.start_object(n); }
  bool key(json::string_t& k) {
    std::string& key = frames_.back().key;
    key.assign(k, 0, kMaxKeyChars);
    if (k.size() > kMaxKeyChars) key.append("...");
    return dom_.key(k);
  }
  bool end_object() {
    frames_.pop_back();
    return dom_.end_object();
  }
  bool start_array(std::size_t n) { return open(true) && dom_.start_array(n); }
  bool end_array() {
    frames_.pop_back();
    return dom_.end_array();
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    // 406: a number nlohmann cannot hold ("number overflow parsing '1e309'").
    failure_ = e.id == 406 ? Failure::kOutOfRange : Failure::kSyntax;
    error_ = e.what();
    error_path_ = path(/*pending_element=*/true);
    return false;
  }

  Failure failure() const { return failure_; }
  const std::string& error() const { return error_; }
  const std::vector<std::string>& error_path() const { return error_path_; }

 private:
  struct Frame {
    bool is_array;
    size_t count = 0;  // arrays: elements begun so far
    std::string key;   // objects: the current member
  };

  // Every value (scalar or container start) counts as the next element of an enclosing array.
  bool value() {
    if (!frames_.empty() && frames_.back().is_array) ++frames_.back().count;
    return true;
  }
  bool open(bool is_array) {
    value();
    if (static_cast<int>(frames_.size()) >= max_) {
      failure_ = Failure::kTooDeep;
      error_path_ = path(false);
      return false;  // sax_parse stops here: nothing deeper is read
    }
    frames_.push_back({is_array, 0, {}});
    return true;
  }
  // Components from the root to the current value; `pending_element`: the failing value of
  // an array has not been counted yet.
  std::vector<std::string> path(bool pending_element) const {
    std::vector<std::string> out;
    for (size_t i = 0; i < frames_.size(); ++i) {
      const Frame& f = frames_[i];
      if (f.is_array) {
        size_t idx = f.count;
        if (!(pending_element && i + 1 == frames_.size()) && idx > 0) --idx;
        std::string c(1, '[');
        c.append(std::to_string(idx)).push_back(']');
        out.push_back(std::move(c));
      } else if (!f.key.empty() || i + 1 < frames_.size()) {
        out.push_back(f.key);
      }
    }
    return out;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  int max_;
  std::vector<Frame> frames_;
  Failure failure_ = Failure::kNone;
  std::string error_;
  std::vector<std::string> error_path_;
};

std::string join_path(const std::string& base, const std::vector<std::string>& parts,
                      size_t max_parts) {
  std::string out = base;
  for (size_t i = 0; i < parts.size() && i < max_parts; ++i) {
    if (parts[i].empty() || parts[i][0] != '[') {
      if (!out.empty()) out += '.';
    }
    out += parts[i];
  }
  return out;
}

// Parses; on failure throws for depth / range, and returns false for syntax errors.
bool parse(std::string_view text, const std::string& param, int max_depth, json& out,
           std::string* syntax_error) {
  BoundedSax sax(out, max_depth);
  const bool ok = json::sax_parse(text.begin(), text.end(), &sax, json::input_format_t::json,
                                  /*strict=*/true);
  if (ok && sax.failure() == Failure::kNone) return true;
  const auto& parts = sax.error_path();
  // A body's errors name the field (the first components of the path); a JSON string field's
  // errors name that field, with the path inside it in the message.
  const std::string shown = join_path(param, parts, kMaxParamComponents);
  const std::string where = param.empty() ? shown : param;
  // "'tools[0].function.parameters...'", or the text as a whole when the path is empty.
  const std::string subject =
      shown.empty() ? std::string("the JSON text")
                    : "'" + shown + (parts.size() > kMaxParamComponents ? "...'" : "'");
  switch (sax.failure()) {
    case Failure::kTooDeep:
      throw InvalidArgument(where, subject +
                                       " nests JSON arrays/objects deeper than the limit of " +
                                       std::to_string(max_depth) + " levels");
    case Failure::kOutOfRange:
      throw InvalidArgument(where, subject + " holds a number out of range (" + sax.error() + ")");
    case Failure::kSyntax:
    case Failure::kNone:
      break;
  }
  *syntax_error = sax.error();
  return false;
}

}  // namespace

json parse_untrusted_json(std::string_view text, const std::string& param, const std::string& what,
                          int max_depth) {
  json out;
  std::string err;
  if (!parse(text, param, max_depth, out, &err))
    throw InvalidArgument(param, what + " is not valid JSON: " + err);
  return out;
}

std::optional<json> try_parse_untrusted_json(std::string_view text, const std::string& param,
                                             int max_depth) {
  json out;
  std::string err;
  if (!parse(text, param, max_depth, out, &err)) return std::nullopt;
  return out;
}

}  // namespace herd::server
