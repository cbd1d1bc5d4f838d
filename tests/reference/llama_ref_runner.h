// Runs the independent numpy reference (tests/reference/llama_ref.py) from C++ tests: one
// place for the interpreter, the script path, the numpy check and the JSON it prints.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace herd::testing {

inline const std::string kRefPython = "/usr/bin/python3";  // Debian's, where python3-numpy is
inline const std::string kRefScript =
    std::string(HERD_SOURCE_DIR) + "/tests/reference/llama_ref.py";

// Tests that need the reference skip (with this message) when numpy is missing.
inline bool have_numpy() {
  return std::filesystem::exists(kRefPython) &&
         std::system((kRefPython + " -c 'import numpy' >/dev/null 2>&1").c_str()) == 0;
}

// "1,2,3" for --ids.
inline std::string id_list(const std::vector<int32_t>& ids) {
  std::string list;
  for (int32_t id : ids) {
    if (!list.empty()) list.push_back(',');
    list.append(std::to_string(id));
  }
  return list;
}

// llama_ref.py MODEL_DIR ARGS, its stdout parsed as JSON.
inline nlohmann::json run_llama_ref(const std::string& dir, const std::string& args) {
  const std::string cmd = kRefPython + " '" + kRefScript + "' '" + dir + "' " + args;
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  std::string out;
  char buf[65536];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p.get())) > 0;) out.append(buf, n);
  return nlohmann::json::parse(out);
}

// The reference logits of every position of `ids` (flags: e.g. " --bf16-activations").
inline std::vector<std::vector<float>> reference_logits(const std::string& dir,
                                                        const std::vector<int32_t>& ids,
                                                        const std::string& flags = "") {
  return run_llama_ref(dir, "--ids " + id_list(ids) + flags)["logits"]
      .get<std::vector<std::vector<float>>>();
}

}  // namespace herd::testing
