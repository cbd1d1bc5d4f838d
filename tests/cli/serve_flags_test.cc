// `herd serve` refuses settings that would silently weaken it (issue 14 item 14): an empty API
// key (flag or HERD_API_KEY) would turn authentication off, so it is an error, not "no key".
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "tests/common/run_command.h"

namespace herd {
namespace {

std::string run(const std::string& cmd, int* status) { return testing::run_command(cmd, status); }

class ServeFlags : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(HERD_BINARY)) GTEST_SKIP() << HERD_BINARY << " not built";
  }
};

TEST_F(ServeFlags, EmptyApiKeyIsRefused) {
  int status = 0;
  // The flags are checked before the model is loaded: no model is needed to see the refusal.
  std::string out = run(std::string(HERD_BINARY) +
                            " serve --model /nonexistent --port 0 --grpc-port -1 --api-key '' 2>&1",
                        &status);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2) << out;
  EXPECT_NE(out.find("--api-key is empty"), std::string::npos) << out;
}

TEST_F(ServeFlags, EmptyApiKeyFromEnvironmentIsRefused) {
  int status = 0;
  std::string out = run("HERD_API_KEY= " + std::string(HERD_BINARY) +
                            " serve --model /nonexistent --port 0 --grpc-port -1 2>&1",
                        &status);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2) << out;
  EXPECT_NE(out.find("HERD_API_KEY is set but empty"), std::string::npos) << out;
}

TEST_F(ServeFlags, NonPositiveTimeoutIsRefused) {
  int status = 0;
  std::string out =
      run(std::string(HERD_BINARY) + " serve --model /nonexistent --port 0 --header-timeout 0 2>&1",
          &status);
  EXPECT_EQ(WEXITSTATUS(status), 2) << out;
  EXPECT_NE(out.find("--header-timeout"), std::string::npos) << out;
}

}  // namespace
}  // namespace herd
