// libFuzzer target: request body JSON -> OpenAI request parsers. The parsers may only ever
// throw herd::InvalidArgument (answered with 400); any other exception or crash is a bug
// (it would surface as a 500 or worse).
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/common/error.h"
#include "server/openai_request.h"

template <class F>
static void expect_only_invalid_argument(F&& f) {
  try {
    f();
  } catch (const herd::InvalidArgument&) {
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  nlohmann::json body = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return 0;
  using namespace herd::server;
  expect_only_invalid_argument([&] { parse_chat_request(body); });
  expect_only_invalid_argument([&] { parse_completion_request(body); });
  expect_only_invalid_argument([&] { parse_tokenize_request(body); });
  expect_only_invalid_argument([&] { parse_detokenize_request(body); });
  return 0;
}
