// The OpenAI Batch file formats: input lines {"custom_id", "method", "url", "body"}, output
// lines {"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}. A
// request the route answered with an error status goes to the error file in the same shape;
// a line that could not be run at all (not JSON, a missing field, a wrong url) gets
// "response": null and "error": {"code", "message", "line"} (line: 1-based, in the input).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "server/openai_response.h"

namespace herd::server {

inline constexpr size_t kMaxCustomIdBytes = 512;

struct BatchLine {
  int64_t line = 0;  // 1-based line number in the input file
  std::string custom_id;
  std::string url;
  nlohmann::json body;
};

// Why a line cannot be run; custom_id is "" when the line does not name one.
struct BatchLineError : std::runtime_error {
  BatchLineError(std::string code_, const std::string& message, std::string custom_id_ = "")
      : std::runtime_error(message), code(std::move(code_)), custom_id(std::move(custom_id_)) {}
  std::string code;
  std::string custom_id;
};

// Checks one input line (a JSON object, as engine/jobs/jsonl_input.h parsed it). `endpoint`:
// the batch's endpoint, every line's url must equal it ("" accepts either supported
// endpoint). The line's length is JsonlInput's limit. Throws BatchLineError.
BatchLine parse_batch_line(const nlohmann::json& value, int64_t line_no,
                           const std::string& endpoint);

// True when `j` nests deeper than `max_depth` levels ([ and {). Iterative: safe on any input
// (nlohmann's dump() and the routes' renderers recurse per level).
bool json_deeper_than(const nlohmann::json& j, int max_depth);

// A fresh output line id: "batch_req_" + 32 hex digits.
std::string new_batch_request_id();

// An answered request: `body_text` is the route's JSON response body.
ordered_json batch_response_line(const std::string& custom_id, int status_code,
                                 const std::string& request_id, const std::string& body_text);
// A line that could not be run (custom_id "" -> null).
ordered_json batch_error_line(const std::string& custom_id, const std::string& code,
                              const std::string& message, int64_t line);

// The custom_ids that appear more than once among `ids` (in the order first repeated).
std::vector<std::string> duplicate_ids(const std::vector<std::string>& ids);

// completion_tokens of an output line's usage (0 when it has none: errors).
int64_t batch_line_completion_tokens(const ordered_json& line);

}  // namespace herd::server
