#include "engine/kv/block_hash.h"

#include <gtest/gtest.h>

#include <vector>

namespace herd {
namespace {

// A distinct made-up key.
BlockKey key_of(unsigned char v) {
  BlockKey k;
  k.bytes.fill(v);
  return k;
}

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
  const BlockKey root = root_key(server_root_key("s"), "");
  const std::vector<int32_t> a{1, 2, 3, 4}, b{1, 2, 3, 5};
  const BlockKey ka = block_key(root, inputs(a), 0, 4);
  EXPECT_EQ(ka, block_key(root, inputs(a), 0, 4));
  EXPECT_NE(ka, block_key(root, inputs(b), 0, 4));            // tokens
  EXPECT_NE(ka, block_key(ka, inputs(a), 0, 4));              // parent
  EXPECT_NE(root, root_key(server_root_key("t"), ""));        // server salt
  EXPECT_NE(root, root_key(server_root_key("s"), "tenant"));  // request salt
  EXPECT_NE(ka, block_key(root, inputs(a), 0, 3));            // length
}

TEST(BlockHash, SamePrefixTokensButDifferentOutputSplitGiveSameKey) {
  // Keys depend on the tokens only, not on whether they were prompt or generated.
  const std::vector<int32_t> all{9, 8, 7, 6}, p{9, 8}, o{7, 6};
  const BlockKey root = key_of(1);
  EXPECT_EQ(block_key(root, inputs(all), 0, 4),
            block_key(root, KeyInputs{TokenSpan(p, o), "", {}}, 0, 4));
}

TEST(BlockHash, ExtraKeysOnlyAffectOverlappingBlocks) {
  const std::vector<int32_t> t{1, 1, 1, 1, 2, 2, 2, 2};
  const std::vector<ExtraKey> img1{{5, 7, key_of(11)}}, img2{{5, 7, key_of(12)}};
  const BlockKey root = key_of(3);
  EXPECT_EQ(block_key(root, inputs(t), 0, 4), block_key(root, inputs(t, "", img1), 0, 4));
  EXPECT_NE(block_key(root, inputs(t), 4, 8), block_key(root, inputs(t, "", img1), 4, 8));
  EXPECT_NE(block_key(root, inputs(t, "", img1), 4, 8), block_key(root, inputs(t, "", img2), 4, 8));
}

// Known answers, computed independently of this code with Python's hashlib:
//   python3 -c 'import hashlib,struct;H=lambda b:hashlib.sha256(b).digest();
//     srv=H(b"herd-test-salt");root=H(srv+b"tenant-a");
//     k0=H(root+struct.pack("<i",16)+struct.pack("<16i",*range(16)));img=H(b"image");
//     k1=H(k0+struct.pack("<i",16)+struct.pack("<16i",*range(16,32))+struct.pack("<ii",20,22)+img);
//     print(root.hex());print(k0.hex());print(k1.hex());print(img.hex())'
// i.e. root = SHA-256(SHA-256(server salt) | request salt); a block's key = SHA-256(parent |
// int32 token count | int32 tokens | per overlapping extra key: int32 start, int32 end, content),
// little-endian.
constexpr const char* kRootHex = "a5e75c34420b14ae1f0d7415698cef8ab16e5837992e29f3740d476568bb25f0";
constexpr const char* kKey0Hex = "d8194c04467cd1ee8116c99767f88187b526ceef4a6d19a038090ba2799fdd61";
constexpr const char* kKey1Hex = "9f3903f887b7d36b823c7b6f970c7c4849375f27f4a2cd7fff2ed5c0b22d091c";
constexpr const char* kImageHex =
    "6105d6cc76af400325e94d588ce511be5bfdbb73b437dc51eca43917d7a43e3d";

TEST(BlockHash, KeysAreSha256OfTheDocumentedLayout) {
  EXPECT_EQ(hash_bytes("image", 5).hex(), kImageHex);
  std::vector<int32_t> t(32);
  for (int i = 0; i < 32; ++i) t[size_t(i)] = i;
  const std::vector<ExtraKey> img{{20, 22, hash_bytes("image", 5)}};
  const KeyInputs in = inputs(t, "tenant-a", img);
  const BlockKey root = root_key(server_root_key("herd-test-salt"), in.cache_salt);
  EXPECT_EQ(root.hex(), kRootHex);
  const BlockKey k0 = block_key(root, in, 0, 16);
  EXPECT_EQ(k0.hex(), kKey0Hex);
  EXPECT_EQ(block_key(k0, in, 16, 32).hex(), kKey1Hex);
}

TEST(BlockHash, RandomSaltsAreFullLengthAndDistinct) {
  const std::string a = random_salt(), b = random_salt();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);  // equal with probability 2^-256
}

}  // namespace
}  // namespace herd
