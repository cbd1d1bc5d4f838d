// Paths to ../shared/testdata for the tokenizer tests, and a skip when it is absent.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "engine/tokenizer/builtin_tokenizer.h"
#include "engine/tokenizer/tokenizer.h"

namespace herd::testing {

inline std::string testdata(const std::string& rel) {
  return std::string(HERD_TESTDATA_DIR) + "/" + rel;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The tokenizer in testdata/<name>, or nullptr when the data is not there. Loaded once per
// test binary (a 128k vocab takes a while) and shared: Tokenizer is immutable.
inline std::shared_ptr<const Tokenizer> load_testdata_tokenizer(const std::string& name) {
  static std::map<std::string, std::shared_ptr<const Tokenizer>> loaded;
  auto it = loaded.find(name);
  if (it != loaded.end()) return it->second;
  std::string dir = testdata(name);
  std::shared_ptr<const Tokenizer> tok;
  if (std::filesystem::exists(dir + "/tokenizer.json") ||
      std::filesystem::exists(dir + "/tokenizer.model"))
    tok = load_tokenizer(dir);
  loaded[name] = tok;
  return tok;
}

// Writes the built-in byte-level tokenizer (tokenizer.json + tokenizer_config.json) of
// `vocab_size` into a fresh temporary directory and returns its path.
inline std::string write_builtin_tokenizer(int vocab_size, const std::string& tag) {
  auto dir = std::filesystem::temp_directory_path() /
             ("herd_tok_" + tag + "_" + std::to_string(vocab_size) + "_" +
              std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << make_byte_level_tokenizer_json(vocab_size).dump();
  std::ofstream(dir / "tokenizer_config.json")
      << make_byte_level_tokenizer_config_json(vocab_size).dump();
  return dir.string();
}

inline std::unique_ptr<Tokenizer> load_builtin_tokenizer(int vocab_size) {
  return load_tokenizer(write_builtin_tokenizer(vocab_size, "builtin"));
}

}  // namespace herd::testing

#define HERD_TOKENIZER_OR_SKIP(var, name)                    \
  auto var = ::herd::testing::load_testdata_tokenizer(name); \
  if (!var)                                                  \
  GTEST_SKIP() << "testdata " << name << " absent (expected under " << HERD_TESTDATA_DIR << ")"
