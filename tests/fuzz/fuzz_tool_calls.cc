// libFuzzer target: model output text -> Llama 3.1 tool-call parser. It must never crash or
// throw; when it finds calls, each must carry a name and arguments that are a JSON object.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/tokenizer/chat_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto calls = herd::parse_llama31_tool_calls(text, "fuzz");
  if (!calls) return 0;
  for (const auto& c : *calls) {
    if (c.name.empty() || c.id.empty()) std::abort();
    auto args = nlohmann::json::parse(c.arguments, nullptr, false);
    if (args.is_discarded() || !args.is_object()) std::abort();
  }
  return 0;
}
