// SequenceConstraint (one sample's grammar state) and ConstraintCache (compiled formats).
#include "engine/grammar/constraint.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/common/error.h"

namespace herd::grammar {
namespace {

std::shared_ptr<const TokenTrie> vocab() {
  // id 0..4 text pieces, id 5 the end token (special: not in the trie).
  std::vector<std::string> v = {"{\"a\":", "1", "}", "2}", "\"", "<eot>"};
  std::vector<bool> special(6, false);
  special[5] = true;
  return std::make_shared<const TokenTrie>(v, special);
}

ResponseFormat schema(const std::string& s) {
  ResponseFormat f;
  f.type = ResponseFormat::Type::kJsonSchema;
  f.schema = s;
  return f;
}

std::vector<int32_t> allowed(const SequenceConstraint& c) {
  TokenBitset m;
  const std::vector<int32_t> end{5};
  c.fill_mask(6, end, m);
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < 6; ++id)
    if (bitset_test(m, id)) ids.push_back(id);
  return ids;
}

TEST(SequenceConstraint, ForcesEndOnlyWhenComplete) {
  ConstraintCache cache(vocab());
  SequenceConstraint c(cache.get(schema(
      R"({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],"additionalProperties":false})")));
  EXPECT_EQ(allowed(c), (std::vector<int32_t>{0}));
  EXPECT_TRUE(c.accept(0));
  EXPECT_EQ(allowed(c), (std::vector<int32_t>{1, 3}));
  EXPECT_FALSE(c.accept(2));  // refused: state unchanged
  EXPECT_TRUE(c.accept(1));
  EXPECT_EQ(allowed(c), (std::vector<int32_t>{1, 2, 3}));  // more digits, or close
  EXPECT_FALSE(c.complete());
  EXPECT_TRUE(c.accept(3));
  EXPECT_TRUE(c.complete());
  EXPECT_EQ(allowed(c), (std::vector<int32_t>{5}));  // only the end remains
  EXPECT_FALSE(c.accept(5));                         // end ids are not grammar input
}

TEST(ConstraintCache, SharesCompiledFormatsAndRefusesBadOnes) {
  ConstraintCache cache(vocab(), 2);
  EXPECT_EQ(cache.get(ResponseFormat{}), nullptr);
  ResponseFormat obj;
  obj.type = ResponseFormat::Type::kJsonObject;
  auto a = cache.get(obj);
  EXPECT_EQ(cache.get(obj), a);
  auto b = cache.get(schema(R"({"type":"integer"})"));
  EXPECT_NE(a, b);
  EXPECT_EQ(cache.size(), 2u);
  cache.get(schema(R"({"type":"string"})"));
  EXPECT_EQ(cache.size(), 2u);  // least recently used evicted
  try {
    cache.get(schema(R"({"type":"string","pattern":"x"})"));
    ADD_FAILURE() << "pattern accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.param(), "response_format");
    EXPECT_NE(std::string(e.what()).find("pattern"), std::string::npos);
  }
  EXPECT_THROW(cache.get(schema("{not json")), InvalidArgument);
  EXPECT_THROW(cache.get(schema(std::string(5000, '[') + std::string(5000, ']'))), InvalidArgument);
}

}  // namespace
}  // namespace herd::grammar
