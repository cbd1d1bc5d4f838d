// Issue 15: constrained decoding through the whole engine. The tiny random-weight model writes
// garbage unless constrained; with a response_format every finished sample must parse as JSON
// of the requested shape, sampling stays seeded-deterministic whatever the batch, and bad
// schemas are refused before anything is queued.
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "engine/common/error.h"
#include "engine/tokenizer/tokenizer.h"
#include "tests/api/engine_test_util.h"

namespace herd {
namespace {

using nlohmann::json;
using testing::make_test_engine;
using testing::test_prompt;
using testing::tiny_engine_options;

Request constrained(std::string id, const std::string& schema, uint64_t seed, int n = 1) {
  Request r;
  r.id = std::move(id);
  r.prompt_ids = test_prompt(12, int(seed % 7));
  r.params.n = n;
  r.params.temperature = 1.0;
  r.params.seed = seed;
  r.params.max_tokens = 300;
  r.params.response_format.type =
      schema.empty() ? ResponseFormat::Type::kJsonObject : ResponseFormat::Type::kJsonSchema;
  r.params.response_format.schema = schema;
  return r;
}

struct Case {
  std::string schema;
  std::function<bool(const json&)> valid;  // a hand-written check of the schema's meaning
};

std::vector<Case> cases() {
  return {
      {R"({"type":"object","properties":{"ok":{"type":"boolean"},"n":{"type":"integer"},
          "c":{"enum":["red","green",7]}},"required":["ok","n","c"],"additionalProperties":false})",
       [](const json& j) {
         return j.is_object() && j.size() == 3 && j["ok"].is_boolean() &&
                j["n"].is_number_integer() && (j["c"] == "red" || j["c"] == "green" || j["c"] == 7);
       }},
      {R"({"type":"array","items":{"anyOf":[{"type":"null"},{"type":"number"}]},"maxItems":4})",
       [](const json& j) {
         if (!j.is_array() || j.size() > 4) return false;
         for (const json& x : j)
           if (!x.is_null() && !x.is_number()) return false;
         return true;
       }},
      {"",  // json_object
       [](const json& j) { return j.is_object(); }},
  };
}

TEST(EngineStructuredOutput, FinishedSamplesAreValidJson) {
  auto engine = make_test_engine(tiny_engine_options());
  const std::vector<Case> cs = cases();
  std::vector<Request> reqs;
  for (size_t c = 0; c < cs.size(); ++c)
    for (uint64_t seed = 1; seed <= 4; ++seed)
      reqs.push_back(constrained(std::string("c").append(std::to_string(c * 10 + seed)),
                                 cs[c].schema, seed, /*n=*/2));
  const auto res = engine->generate(reqs);
  int finished = 0;
  for (size_t i = 0; i < res.size(); ++i) {
    const Case& c = cs[i / 4];
    for (const Output& o : res[i]) {
      ASSERT_TRUE(o.error.empty()) << o.error;
      if (o.finish_reason != FinishReason::kStop) continue;
      ++finished;
      const json j = json::parse(o.text, nullptr, /*allow_exceptions=*/false);
      ASSERT_FALSE(j.is_discarded()) << o.text;
      EXPECT_TRUE(c.valid(j)) << c.schema << "\n-> " << o.text;
    }
  }
  EXPECT_GT(finished, 0);  // the end is forced once a value is complete
}

TEST(EngineStructuredOutput, SeededOutputDoesNotDependOnTheBatch) {
  const std::string schema = cases()[0].schema;
  auto alone = make_test_engine(tiny_engine_options());
  const auto one = alone->generate({constrained("a", schema, 42, 2)});
  auto batched = make_test_engine(tiny_engine_options());
  const auto many =
      batched->generate({constrained("x", cases()[1].schema, 5, 3), constrained("a", schema, 42, 2),
                         constrained("y", "", 6, 1)});
  ASSERT_EQ(one[0].size(), many[1].size());
  for (size_t s = 0; s < one[0].size(); ++s) EXPECT_EQ(one[0][s].token_ids, many[1][s].token_ids);
}

TEST(EngineStructuredOutput, BadSchemasAreRefusedNamingTheKeyword) {
  auto engine = make_test_engine(tiny_engine_options());
  try {
    engine->add_request(constrained("bad", R"({"type":"string","pattern":"^x"})", 1),
                        [](const Output&) {});
    ADD_FAILURE() << "pattern accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.param(), "response_format");
    EXPECT_NE(std::string(e.what()).find("pattern"), std::string::npos) << e.what();
  }
  Request r = constrained("bad2", "{\"type\":", 1);
  r.params.response_format.param = "tools";
  try {
    engine->add_request(r, [](const Output&) {});
    ADD_FAILURE() << "broken JSON accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.param(), "tools");
  }
  // Nothing could end a complete value: refused rather than looping on a masked row.
  Request no_end = constrained("no-end", "", 1);
  no_end.params.ignore_eos = true;
  try {
    engine->add_request(no_end, [](const Output&) {});
    ADD_FAILURE() << "ignore_eos accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.param(), "ignore_eos");
  }
  EXPECT_EQ(engine->stats().waiting, 0);
}

}  // namespace
}  // namespace herd
