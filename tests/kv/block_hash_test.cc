#include "engine/kv/block_hash.h"

#include <gtest/gtest.h>

#include <vector>

namespace herd {
namespace {

KeyInputs inputs(const std::vector<int32_t>& t, std::string_view salt = "",
                 std::span<const ExtraKey> extra = {}) {
  return KeyInputs{TokenSpan(t, {}), salt, extra};
}

TEST(BlockHash, TokenSpanJoinsPromptAndOutput) {
  const std::vector<int32_t> p{1, 2, 3}, o{4, 5};
  const TokenSpan t(p, o);
  ASSERT_EQ(t.size(), 5);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(t[i], i + 1);
}

TEST(BlockHash, DeterministicAndSensitiveToEveryInput) {
  const BlockKey root = root_key(hash_bytes("s", 1), "");
  const std::vector<int32_t> a{1, 2, 3, 4}, b{1, 2, 3, 5};
  const BlockKey ka = block_key(root, inputs(a), 0, 4);
  EXPECT_EQ(ka, block_key(root, inputs(a), 0, 4));
  EXPECT_NE(ka, block_key(root, inputs(b), 0, 4));          // tokens
  EXPECT_NE(ka, block_key(ka, inputs(a), 0, 4));            // parent
  EXPECT_NE(root, root_key(hash_bytes("t", 1), ""));        // server salt
  EXPECT_NE(root, root_key(hash_bytes("s", 1), "tenant"));  // request salt
  EXPECT_NE(ka, block_key(root, inputs(a), 0, 3));          // length
}

TEST(BlockHash, SamePrefixTokensButDifferentOutputSplitGiveSameKey) {
  // Keys depend on the tokens only, not on whether they were prompt or generated.
  const std::vector<int32_t> all{9, 8, 7, 6}, p{9, 8}, o{7, 6};
  const BlockKey root{1, 2};
  EXPECT_EQ(block_key(root, inputs(all), 0, 4),
            block_key(root, KeyInputs{TokenSpan(p, o), "", {}}, 0, 4));
}

TEST(BlockHash, ExtraKeysOnlyAffectOverlappingBlocks) {
  const std::vector<int32_t> t{1, 1, 1, 1, 2, 2, 2, 2};
  const std::vector<ExtraKey> img1{{5, 7, BlockKey{11, 0}}}, img2{{5, 7, BlockKey{12, 0}}};
  const BlockKey root{3, 4};
  EXPECT_EQ(block_key(root, inputs(t), 0, 4), block_key(root, inputs(t, "", img1), 0, 4));
  EXPECT_NE(block_key(root, inputs(t), 4, 8), block_key(root, inputs(t, "", img1), 4, 8));
  EXPECT_NE(block_key(root, inputs(t, "", img1), 4, 8), block_key(root, inputs(t, "", img2), 4, 8));
}

}  // namespace
}  // namespace herd
