// JSON Schema -> byte Grammar, for the subset OpenAI's strict mode accepts:
//   type (string or list of) object / array / string / number / integer / boolean / null,
//   properties, required, additionalProperties (false; anything else only admits the listed
//   properties in the output, which is still valid), items, minItems / maxItems (<= 64),
//   enum, const, anyOf, $defs / definitions and local $ref ("#", "#/$defs/x", JSON pointers),
//   plus annotations (title, description, default, examples, $schema, $id, $comment, ...).
// Everything else (pattern, format, minLength/maxLength, minimum/maximum, oneOf, allOf, not,
// if/then/else, patternProperties, prefixItems, uniqueItems, ...) is refused with
// herd::InvalidArgument naming the keyword and where it is, never silently ignored.
//
// The output is compact JSON: no whitespace except one optional space after ':' and ','
// (a garbage model cannot stall in whitespace). Properties come in the schema's order; optional
// ones may be left out. Strings are well-formed UTF-8 (control characters escaped). Numbers
// are bounded so that every parser reads them exactly as JSON numbers (at most 16 integer
// digits, 15 fraction digits, 2 exponent digits). Untyped values ({} or true, "any JSON")
// nest at most kMaxAnyDepth deep; recursion through $ref is unbounded (max_tokens bounds it).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "engine/grammar/grammar.h"

namespace herd::grammar {

inline constexpr int kMaxSchemaDepth = 32;  // nesting of the schema document itself
inline constexpr int kMaxAnyDepth = 12;     // nesting of generated untyped values
inline constexpr size_t kMaxGrammarElements = 1 << 20;
inline constexpr int kMaxItemsBound = 64;  // minItems / maxItems we unroll

// Compiles `schema`; errors name `param` (e.g. "response_format" or "tools").
// An ordered_json keeps the schema's property order, which the output follows.
Grammar compile_json_schema(const nlohmann::ordered_json& schema, const std::string& param);
// Any JSON object (response_format json_object).
Grammar any_json_object_grammar();

}  // namespace herd::grammar
