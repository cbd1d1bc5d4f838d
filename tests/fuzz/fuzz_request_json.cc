// libFuzzer target: request body bytes -> the server's depth-bounded JSON parser
// (server/untrusted_json.h, what parse_body uses) -> OpenAI request parsers. They may only ever
// throw herd::InvalidArgument (answered with 400); any other exception or crash is a bug
// (it would surface as a 500 or worse). The corpus holds the issue-14 probe bodies: nesting
// 17,500 deep in tool-call arguments and 5,000 deep in tool parameters, numbers out of range.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/common/error.h"
#include "server/openai_request.h"
#include "server/untrusted_json.h"

template <class F>
static void expect_only_invalid_argument(F&& f) {
  try {
    f();
  } catch (const herd::InvalidArgument&) {
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace herd::server;
  std::string text(reinterpret_cast<const char*>(data), size);
  nlohmann::json body;
  try {
    body = parse_untrusted_json(text, "", "The request body");
  } catch (const herd::InvalidArgument&) {
    return 0;  // not JSON, too deep, or a number out of range: a 400
  }
  expect_only_invalid_argument([&] { parse_chat_request(body); });
  expect_only_invalid_argument([&] { parse_completion_request(body); });
  expect_only_invalid_argument([&] { parse_tokenize_request(body); });
  expect_only_invalid_argument([&] { parse_detokenize_request(body); });
  return 0;
}
