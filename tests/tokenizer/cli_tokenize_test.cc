// `herd tokenize` end to end, when the herd binary has been built (skips otherwise).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "tests/tokenizer/testdata.h"

namespace herd {
namespace {

// Runs `cmd` with `input` on stdin; returns stdout and sets *rc.
std::string run(const std::string& cmd, const std::string& input, int* rc) {
  auto in_path = std::filesystem::temp_directory_path() / "herd_cli_tokenize_in.txt";
  std::ofstream(in_path, std::ios::binary) << input;
  std::string full = cmd + " < " + in_path.string() + " 2>/dev/null";
  FILE* p = popen(full.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

TEST(CliTokenize, EncodeDecodeRoundTrip) {
  if (!std::filesystem::exists(HERD_BINARY)) GTEST_SKIP() << HERD_BINARY << " not built";
  std::string dir = testing::write_builtin_tokenizer(1024, "cli");
  auto tok = load_tokenizer(dir);
  const std::string bin = std::string(HERD_BINARY) + " tokenize --tokenizer " + dir;
  const std::string text = "Once upon a time<|eot_id|> 日本";
  int rc = 0;
  std::string ids_json = run(bin, text, &rc);
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(nlohmann::json::parse(ids_json).get<std::vector<int32_t>>(), tok->encode(text));
  EXPECT_EQ(run(bin + " --decode", ids_json, &rc), text);
  EXPECT_EQ(rc, 0);

  std::string special_json = run(bin + " --special", text, &rc);
  EXPECT_EQ(nlohmann::json::parse(special_json).get<std::vector<int32_t>>(),
            tok->encode(text, true));
  EXPECT_EQ(run(bin + " --decode --special", special_json, &rc), text);
  EXPECT_EQ(run(bin + " --decode", special_json, &rc), "Once upon a time 日本");

  // --split: one JSON array per text, each text followed by the separator.
  std::string split_json = run(bin + " --split '|||'", "ab c|||" + text + "||||||", &rc);
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(nlohmann::json::parse(split_json).get<std::vector<std::vector<int32_t>>>(),
            (std::vector<std::vector<int32_t>>{tok->encode("ab c"), tok->encode(text), {}}));
  run(bin + " --split '' ", "x", &rc);
  EXPECT_EQ(rc, 2);

  run(bin + " --decode", "not json", &rc);
  EXPECT_EQ(rc, 1);
  run(std::string(HERD_BINARY) + " tokenize", "", &rc);
  EXPECT_EQ(rc, 2);
}

}  // namespace
}  // namespace herd
