// load_tokenizer on broken input: a herd::Error whose message names the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "engine/common/error.h"
#include "engine/tokenizer/tokenizer.h"

namespace herd {
namespace {

std::string make_dir(const std::string& name, const std::string& tokenizer_json) {
  auto dir = std::filesystem::temp_directory_path() / ("herd_badtok_" + name);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << tokenizer_json;
  return dir.string();
}

void expect_error_naming_file(const std::string& dir, const std::string& fragment) {
  try {
    load_tokenizer(dir);
    FAIL() << "no error for " << dir;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(dir + "/tokenizer.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
  }
}

TEST(TokenizerBadFiles, Missing) {
  auto dir = std::filesystem::temp_directory_path() / "herd_badtok_missing_dir";
  std::filesystem::remove_all(dir);
  expect_error_naming_file(dir.string(), "no such file");
}

TEST(TokenizerBadFiles, BadJson) {
  expect_error_naming_file(make_dir("badjson", "{\"model\": {"), "not a valid JSON");
}

TEST(TokenizerBadFiles, UnsupportedModelType) {
  expect_error_naming_file(
      make_dir("wordpiece", R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}})"), "WordPiece");
}

TEST(TokenizerBadFiles, MergeWithUnknownToken) {
  expect_error_naming_file(
      make_dir("badmerge",
               R"({"model": {"type": "BPE", "byte_fallback": true, "vocab": {"a": 0},
                             "merges": ["a zz"]}})"),
      "merges[0]");
}

TEST(TokenizerBadFiles, ByteLevelVocabMissingBytes) {
  expect_error_naming_file(make_dir("nobytes", R"({"decoder": {"type": "ByteLevel"},
                              "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})"),
                           "byte");
}

// The component readers walk nested Sequences recursively; a file nested 100,000 deep must be
// refused up front, not overflow the stack.
TEST(TokenizerBadFiles, DeeplyNestedSequences) {
  std::string open, close;
  for (int i = 0; i < 100000; ++i) {
    open += R"({"type": "Sequence", "normalizers": [)";
    close += "]}";
  }
  expect_error_naming_file(
      make_dir("deepseq", R"({"model": {"type": "BPE", "byte_fallback": true, "vocab": {"a": 0},
                                       "merges": []}, "normalizer": )" +
                              open + close + "}"),
      "nested deeper");
}

TEST(TokenizerBadFiles, BadConfig) {
  auto dir = make_dir("badcfg", R"({"model": {"type": "BPE", "byte_fallback": true,
                                    "vocab": {"<s>": 0, "a": 1}, "merges": []}})");
  std::ofstream(dir + "/tokenizer_config.json") << R"({"bos_token": "<nope>"})";
  try {
    load_tokenizer(dir);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace herd
