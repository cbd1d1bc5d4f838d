// tokenizer.model (sentencepiece ModelProto) loading and sentencepiece BPE encoding: Meta's
// Llama 2 file from testdata, cross-checked against llama2.c's tokenizer.bin export of the same
// vocabulary, and small models written here with a protobuf writer to pin the merge order
// (score, then leftmost), UNUSED resegmentation, byte fallback and the normalizer options.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "engine/common/error.h"
#include "engine/tokenizer/sentencepiece_model_proto.h"
#include "engine/tokenizer/sentencepiece_model_tokenizer.h"
#include "engine/tokenizer/tokenizer.h"
#include "tests/tokenizer/testdata.h"

namespace herd {
namespace {

const std::string kSp = "\xE2\x96\x81";  // "▁"

// --- a minimal protobuf writer for test models ---
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
void put_key(std::string& out, uint32_t field, uint32_t wire) {
  put_varint(out, field << 3 | wire);
}
void put_bytes(std::string& out, uint32_t field, const std::string& b) {
  put_key(out, field, 2);
  put_varint(out, b.size());
  out += b;
}
void put_uint(std::string& out, uint32_t field, uint64_t v) {
  put_key(out, field, 0);
  put_varint(out, v);
}
void put_float(std::string& out, uint32_t field, float f) {
  put_key(out, field, 5);
  uint32_t u;
  std::memcpy(&u, &f, 4);
  for (int i = 0; i < 4; ++i) out += static_cast<char>((u >> (8 * i)) & 0xFF);
}

struct TestPiece {
  std::string piece;
  float score;
  int type;  // 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
};

struct TestModel {
  std::vector<TestPiece> pieces;
  int model_type = 2;
  bool byte_fallback = true;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = false;
  std::string charsmap;
};

// <unk> <s> </s>, the 256 byte pieces, then `normal`.
TestModel base_model(const std::vector<TestPiece>& normal, bool with_bytes = true) {
  TestModel m;
  m.pieces = {{"<unk>", 0, 2}, {"<s>", 0, 3}, {"</s>", 0, 3}};
  if (with_bytes) {
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      m.pieces.push_back({name, 0, 6});
    }
  }
  m.byte_fallback = with_bytes;
  for (const auto& p : normal) m.pieces.push_back(p);
  return m;
}

std::string serialize(const TestModel& m) {
  std::string out;
  for (const auto& p : m.pieces) {
    std::string sp;
    put_bytes(sp, 1, p.piece);
    put_float(sp, 2, p.score);
    if (p.type != 1) put_uint(sp, 3, p.type);
    put_bytes(out, 1, sp);
  }
  std::string trainer;
  put_bytes(trainer, 1, "corpus.txt");  // a field the reader skips
  put_uint(trainer, 3, m.model_type);
  put_uint(trainer, 35, m.byte_fallback);
  put_uint(trainer, 43, static_cast<uint64_t>(-1));  // pad_id = -1: a 10-byte varint
  put_float(trainer, 10, 0.9995f);                   // skipped fixed32
  put_bytes(out, 2, trainer);
  std::string norm;
  put_bytes(norm, 1, m.charsmap.empty() ? "identity" : "nmt_nfkc");
  put_bytes(norm, 2, m.charsmap);
  put_uint(norm, 3, m.add_dummy_prefix);
  put_uint(norm, 4, m.remove_extra_whitespaces);
  put_bytes(out, 3, norm);
  return out;
}

std::string write_model_dir(const std::string& tag, const std::string& bytes) {
  auto dir =
      std::filesystem::temp_directory_path() /
      ("herd_spm_" + tag + "_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.model", std::ios::binary) << bytes;
  return dir.string();
}

std::unique_ptr<Tokenizer> load_model(const std::string& tag, const TestModel& m) {
  return load_tokenizer(write_model_dir(tag, serialize(m)));
}

std::vector<std::string> pieces_of(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(tok.token_bytes(id));
  return out;
}

// --- Meta's Llama 2 tokenizer.model ---

TEST(SentencepieceModel, LoadsMetaLlama2) {
  HERD_TOKENIZER_OR_SKIP(tok, "llama2-tokenizer-meta");
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->token_id(kSp), 29871);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_TRUE(tok->is_special(0) && tok->is_special(1) && tok->is_special(2));
  EXPECT_FALSE(tok->is_special(29871));
  EXPECT_EQ(tok->token_bytes(3 + 0x0A), "\n");  // byte pieces decode to their byte
  // Control pieces are text unless specials are allowed.
  auto plain = tok->encode("<s>hi</s>", false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
  EXPECT_EQ(tok->decode(plain), "<s>hi</s>");
  auto special = tok->encode("<s>hi</s>", true);
  ASSERT_GE(special.size(), 3u);
  EXPECT_EQ(special.front(), 1);
  EXPECT_EQ(special.back(), 2);
}

// llama2.c's tokenizer.bin is an independent export of the same 32000 pieces: {float score,
// int32 len, bytes} with "▁" written as a space. Every normal piece's text must agree.
TEST(SentencepieceModel, AgreesWithLlama2cExport) {
  HERD_TOKENIZER_OR_SKIP(tok, "llama2-tokenizer-meta");
  std::string bin = testing::read_file(testing::testdata("llama2-tokenizer-meta/tokenizer.bin"));
  ASSERT_GE(bin.size(), 4u);
  size_t pos = 4;  // uint32 max_token_length
  int checked = 0;
  for (int32_t id = 0; id < 32000; ++id) {
    ASSERT_LE(pos + 8, bin.size()) << id;
    int32_t len;
    std::memcpy(&len, bin.data() + pos + 4, 4);
    pos += 8;
    ASSERT_LE(pos + size_t(len), bin.size()) << id;
    std::string text = bin.substr(pos, len);
    pos += len;
    if (id < 259) continue;  // <unk>, <s>, </s> and the byte pieces are written differently
    EXPECT_EQ(tok->token_bytes(id), text) << "id " << id;
    ++checked;
  }
  EXPECT_EQ(pos, bin.size());
  EXPECT_EQ(checked, 32000 - 259);
}

TEST(SentencepieceModel, TokenizerJsonIsPreferredWhenBothExist) {
  // An HF directory carries both; tokenizer.json wins (it may add tokens the model lacks).
  std::string dir = testing::write_builtin_tokenizer(600, "with_model");
  std::ofstream(dir + "/tokenizer.model", std::ios::binary)
      << serialize(base_model({{"a", -1, 1}}));
  auto tok = load_tokenizer(dir);
  EXPECT_EQ(tok->vocab_size(), 600);
  EXPECT_EQ(tok->token_id("<|begin_of_text|>"), tok->bos_id());  // tokenizer.json, not the model
  std::filesystem::remove(dir + "/tokenizer.json");
  std::filesystem::remove(dir + "/tokenizer_config.json");
  EXPECT_EQ(load_tokenizer(dir)->vocab_size(), 3 + 256 + 1);
}

// Callers prepend BOS exactly when adds_bos() is false (the server's completions, /tokenize
// and gRPC Generate/Tokenize): it must say whether encode() put BOS first. Sentencepiece
// tokenizers used to claim it did while encode() never does, so served Llama 2 prompts had
// no <s>.
TEST(SentencepieceModel, AddsBosTellsTheTruth) {
  std::vector<std::shared_ptr<const Tokenizer>> toks = {
      testing::load_testdata_tokenizer("llama2-tokenizer-meta"),
      testing::load_testdata_tokenizer("llama2-tokenizer"),
      testing::load_testdata_tokenizer("llama3-tokenizer"),
      load_model("bos", base_model({{kSp, -1, 1}, {"a", -1, 1}})),
      testing::load_builtin_tokenizer(600)};
  int checked = 0;
  for (const auto& tok : toks) {
    if (!tok) continue;
    ASSERT_GE(tok->bos_id(), 0);
    auto ids = tok->encode("a");
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(tok->adds_bos(), ids.front() == tok->bos_id());
    EXPECT_FALSE(tok->adds_bos());
    ++checked;
  }
  EXPECT_GE(checked, 2);
}

// --- the encoder, on small models ---

TEST(SentencepieceModel, MergesHighestScoreFirst) {
  auto m = base_model(
      {{kSp, -1, 1}, {"a", -1, 1}, {"b", -1, 1}, {"c", -1, 1}, {"ab", -3, 1}, {"bc", -2, 1}});
  m.add_dummy_prefix = false;
  auto tok = load_model("score_bc", m);
  EXPECT_EQ(pieces_of(*tok, tok->encode("abc")), (std::vector<std::string>{"a", "bc"}));
  m.pieces[m.pieces.size() - 2].score = -1;  // now "ab" outranks "bc"
  tok = load_model("score_ab", m);
  EXPECT_EQ(pieces_of(*tok, tok->encode("abc")), (std::vector<std::string>{"ab", "c"}));
}

TEST(SentencepieceModel, EqualScoresMergeLeftmostFirst) {
  auto m = base_model({{"a", -1, 1}, {"aa", -2, 1}});
  m.add_dummy_prefix = false;
  auto tok = load_model("leftmost", m);
  EXPECT_EQ(pieces_of(*tok, tok->encode("aaa")), (std::vector<std::string>{"aa", "a"}));
  EXPECT_EQ(pieces_of(*tok, tok->encode("aaaaa")), (std::vector<std::string>{"aa", "aa", "a"}));
}

TEST(SentencepieceModel, UnusedPiecesMergeThenSplitBack) {
  // "ab" is UNUSED: it never appears in the output, but "abc" is reached through it.
  auto m = base_model({{"a", -1, 1}, {"b", -1, 1}, {"c", -1, 1}, {"ab", -2, 5}, {"abc", -3, 1}});
  m.add_dummy_prefix = false;
  auto tok = load_model("unused", m);
  EXPECT_EQ(pieces_of(*tok, tok->encode("ab")), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(pieces_of(*tok, tok->encode("abc")), (std::vector<std::string>{"abc"}));
  EXPECT_EQ(pieces_of(*tok, tok->encode("abab")), (std::vector<std::string>{"a", "b", "a", "b"}));
}

TEST(SentencepieceModel, ByteFallbackAndUnknown) {
  auto with = load_model("bytes", base_model({{kSp, -1, 1}, {"a", -1, 1}}));
  auto ids = with->encode("a\xC3\xA9");  // "aé": é is not a piece
  EXPECT_EQ(pieces_of(*with, ids), (std::vector<std::string>{" ", "a", "\xC3", "\xA9"}));
  EXPECT_EQ(with->decode(ids), "a\xC3\xA9");
  auto without = load_model("nobytes", base_model({{kSp, -1, 1}, {"a", -1, 1}}, false));
  EXPECT_EQ(without->encode("a\xC3\xA9"),
            (std::vector<int32_t>{*without->token_id(kSp), *without->token_id("a"), 0}));
}

TEST(SentencepieceModel, DummyPrefixAndWhitespaceOptions) {
  auto m = base_model({{kSp, -1, 1}, {"a", -1, 1}, {"b", -1, 1}, {kSp + "a", -2, 1}});
  auto tok = load_model("prefix", m);
  EXPECT_EQ(pieces_of(*tok, tok->encode("a b")), (std::vector<std::string>{" a", " ", "b"}));
  EXPECT_EQ(pieces_of(*tok, tok->encode(" a")), (std::vector<std::string>{" ", " a"}));
  EXPECT_EQ(tok->decode(tok->encode(" a")), " a");  // only the dummy prefix is dropped
  EXPECT_TRUE(tok->encode("").empty());
  m.remove_extra_whitespaces = true;
  tok = load_model("squeeze", m);
  EXPECT_EQ(pieces_of(*tok, tok->encode("  a   b ")), (std::vector<std::string>{" a", " ", "b"}));
  EXPECT_TRUE(tok->encode("   ").empty());
  m.add_dummy_prefix = false;
  tok = load_model("noprefix", m);
  EXPECT_EQ(pieces_of(*tok, tok->encode("a")), (std::vector<std::string>{"a"}));
}

TEST(SentencepieceModel, UserDefinedPiecesAlwaysMatch) {
  auto m = base_model({{kSp, -1, 1}, {"a", -1, 1}, {"<sep>", 0, 4}});
  auto tok = load_model("userdef", m);
  int32_t sep = *tok->token_id("<sep>");
  auto ids = tok->encode("a<sep>a", false);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), sep), 1);
  EXPECT_FALSE(tok->is_special(sep));
}

// --- malformed files: a herd::Error naming the file ---

void expect_model_error(const std::string& tag, const std::string& bytes,
                        const std::string& fragment) {
  std::string dir = write_model_dir(tag, bytes);
  try {
    load_tokenizer(dir);
    ADD_FAILURE() << "no error for " << tag;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(dir + "/tokenizer.model"), std::string::npos) << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
  }
}

TEST(SentencepieceModel, MalformedFilesAreNamed) {
  std::string good = serialize(base_model({{"a", -1, 1}}));
  expect_model_error("truncated", good.substr(0, good.size() - 3), "runs past");
  expect_model_error("badvarint", std::string(12, '\xFF'), "varint");
  expect_model_error("group", std::string("\x0B", 1), "wire type");
  expect_model_error("empty", "", "no pieces");
  std::string wrong_wire;
  put_uint(wrong_wire, 1, 5);  // pieces as a varint
  expect_model_error("wrongwire", wrong_wire, "field 1 has wire type 0");
  auto unigram = base_model({{"a", -1, 1}});
  unigram.model_type = 1;
  expect_model_error("unigram", serialize(unigram), "unigram");
  auto nfkc = base_model({{"a", -1, 1}});
  nfkc.charsmap = "\x01\x02";
  expect_model_error("nfkc", serialize(nfkc), "nmt_nfkc");
  auto dup = base_model({{"a", -1, 1}, {"a", -2, 1}});
  expect_model_error("dup", serialize(dup), "twice");
  auto badbyte = base_model({{"<0xZZ>", 0, 6}});
  expect_model_error("badbyte", serialize(badbyte), "<0xHH>");
}

// Any bytes: the reader and the tokenizer either load (and then encode and decode) or throw
// herd::Error; nothing else escapes, nothing reads out of bounds (run under ASan in CI).
TEST(SentencepieceModel, CorruptedModelsThrowOrLoad) {
  auto m = base_model({{kSp, -1, 1},
                       {"a", -1, 1},
                       {"b", -2, 1},
                       {kSp + "a", -3, 1},
                       {"ab", -4, 5},
                       {"<sep>", 0, 4}});
  const std::string good = serialize(m);
  std::mt19937 rng(7);
  int loaded = 0, refused = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string bytes = good;
    switch (i % 3) {
      case 0:  // flip a few bytes
        for (int k = 0; k < 1 + int(rng() % 4); ++k)
          bytes[rng() % bytes.size()] ^= char(1 + rng() % 255);
        break;
      case 1:  // truncate
        bytes.resize(rng() % bytes.size());
        break;
      default:  // splice in random bytes
        bytes.insert(rng() % bytes.size(), std::string(1 + rng() % 8, char(rng())));
    }
    try {
      SentencepieceModelTokenizer tok(parse_sentencepiece_model(bytes, "fuzz.model"), "fuzz.model",
                                      "/nonexistent");
      auto ids = tok.encode("ab a<sep>\xC3\xA9", true);
      for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok.vocab_size());
      (void)tok.decode(ids);
      ++loaded;
    } catch (const Error&) {
      ++refused;
    }
  }
  EXPECT_GT(loaded, 0);
  EXPECT_GT(refused, 0);
}

}  // namespace
}  // namespace herd
