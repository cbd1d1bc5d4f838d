// The one JSON parser for untrusted input (HTTP bodies, gRPC JSON string fields, JSON text
// inside a request such as tool-call arguments). nlohmann's own parser is iterative, but what
// later walks the tree is not: dump(), copies, comparisons and the prompt renderer recurse once
// per level, and an indented dump writes indentation proportional to the depth on every line
// (a 5,000-deep array renders to ~100 MB). So nothing deeper than kMaxJsonDepth ever leaves
// this parser: it counts depth on the SAX events and stops at the first level too deep, in
// time linear in the bytes read up to that point and memory bounded by the limit.
//
// Every failure is a herd::InvalidArgument (400 / INVALID_ARGUMENT) whose param() names where
// it happened, as a path below `param` ("tools[0].function.parameters", "temperature"):
//  - nesting deeper than kMaxJsonDepth,
//  - a number outside the range of a double ("temperature": 1e309), which nlohmann reports as
//    out_of_range (not parse_error) and used to surface as a 500,
//  - text that is not JSON (message "... is not valid JSON: <nlohmann's byte offset>").
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace herd::server {

// Nesting levels ([ and {) a request may use anywhere: deep enough for real JSON schemas
// (each schema level is two JSON levels, "properties" -> {...}), far below stack trouble.
inline constexpr int kMaxJsonDepth = 64;

// `param` names the text being parsed ("" for an HTTP body, "tools_json", ...); it prefixes
// the paths in errors. `what` is how messages refer to the text ("The request body").
nlohmann::json parse_untrusted_json(std::string_view text, const std::string& param,
                                    const std::string& what, int max_depth = kMaxJsonDepth);

// Like parse_untrusted_json, but text that is not JSON is not an error: returns nullopt (the
// caller keeps the text as text). Too deep or out-of-range numbers still throw.
std::optional<nlohmann::json> try_parse_untrusted_json(std::string_view text,
                                                       const std::string& param,
                                                       int max_depth = kMaxJsonDepth);

}  // namespace herd::server
