// Paths to ../shared/testdata for the tokenizer tests, and a skip when it is absent.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

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

// Loads a tokenizer from testdata/<name>, or nullptr when the data is not there.
inline std::unique_ptr<Tokenizer> load_testdata_tokenizer(const std::string& name) {
  std::string dir = testdata(name);
  if (!std::filesystem::exists(dir + "/tokenizer.json")) return nullptr;
  return load_tokenizer(dir);
}

}  // namespace herd::testing

#define HERD_TOKENIZER_OR_SKIP(var, name)                    \
  auto var = ::herd::testing::load_testdata_tokenizer(name); \
  if (!var)                                                  \
  GTEST_SKIP() << "testdata " << name << " absent (expected under " << HERD_TESTDATA_DIR << ")"
