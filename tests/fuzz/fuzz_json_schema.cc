// libFuzzer target: request text -> JSON schema compiler -> byte matcher. Any input must end in
// a compiled grammar or herd::InvalidArgument, never a crash, a hang or another exception; a
// compiled grammar must then run: its initial state is expanded and the input's own bytes are
// fed to it until one is refused.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/common/error.h"
#include "engine/grammar/json_schema_compiler.h"
#include "engine/grammar/matcher.h"
#include "engine/tokenizer/json_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // As the engine does (engine/grammar/constraint.cc): depth first, then parse.
  if (!herd::json_text_depth_within(text, herd::kMaxJsonDepth)) return 0;
  const auto schema = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) return 0;
  herd::grammar::Grammar g;
  try {
    g = herd::grammar::compile_json_schema(schema, "response_format");
  } catch (const herd::InvalidArgument&) {
    return 0;
  }
  herd::grammar::StackSet state = herd::grammar::initial_state(g);
  if (state.empty()) std::abort();  // every compiled grammar admits some value
  for (char c : text) {
    state = herd::grammar::advance(g, state, uint8_t(c));
    if (state.empty()) break;
  }
  return 0;
}
