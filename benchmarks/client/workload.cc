#include "benchmarks/client/workload.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "engine/common/error.h"
#include "engine/tokenizer/tokenizer.h"

namespace herd::bench {

std::string_view pool_text() {
  // Plain prose with digits and punctuation: common tokens of any English-trained tokenizer.
  return "The quick brown fox jumps over the lazy dog while seven wizards quietly judge boxing "
         "matches. In 1969, two astronauts walked on the Moon; millions watched on television, "
         "and the world changed. Rivers carry water from mountains to the sea, shaping valleys, "
         "feeding farms and cities along the way. A good benchmark measures what users feel: "
         "how long the first word takes, how fast the rest follows, and how many requests the "
         "server can carry at once. Bread, cheese, apples, coffee and tea are on the table; "
         "please pass the salt. Numbers such as 3.14, 42, 100 and 2048 appear here too!";
}

std::vector<int32_t> token_pool(std::vector<int32_t> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

std::vector<int32_t> local_token_pool(const std::string& tokenizer_dir) {
  std::unique_ptr<Tokenizer> tok;
  try {
    tok = load_tokenizer(tokenizer_dir);
  } catch (const Error& e) {
    throw InvalidArgument("tokenizer", std::string("cannot load --tokenizer ")
                                           .append(tokenizer_dir)
                                           .append(": ")
                                           .append(e.what()));
  }
  std::vector<int32_t> ids = tok->encode(pool_text());
  // A tokenizer whose encode() adds BOS would put it in the middle of random prompts.
  std::erase_if(ids, [&](int32_t id) { return tok->is_special(id); });
  return token_pool(std::move(ids));
}

std::vector<BenchRequest> random_workload(const WorkloadOptions& o,
                                          const std::vector<int32_t>& pool) {
  if (pool.empty()) throw Error("the token pool for random prompts is empty");
  std::mt19937_64 rng(o.seed);
  // Modulo bias over a pool of ~100 from 64 random bits is negligible; this keeps the prompts
  // identical across standard libraries (uniform_int_distribution's algorithm is unspecified).
  auto draw = [&] { return pool[rng() % pool.size()]; };
  std::vector<int32_t> prefix(static_cast<size_t>(o.prefix_len));
  for (auto& id : prefix) id = draw();
  std::vector<BenchRequest> out(static_cast<size_t>(o.num_prompts));
  for (auto& r : out) {
    r.ids = prefix;
    for (int i = 0; i < o.input_len; ++i) r.ids.push_back(draw());
    r.prompt_len = static_cast<int>(r.ids.size());
    r.output_len = o.output_len;
  }
  return out;
}

std::vector<BenchRequest> dataset_workload(const WorkloadOptions& o, const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InvalidArgument("dataset", "cannot open dataset file '" + path + "'");
  std::vector<std::string> prompts;
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(lineno);
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw InvalidArgument("dataset", where + ": not valid JSON");
    if (!j.is_object() || !j.contains("prompt") || !j["prompt"].is_string())
      throw InvalidArgument("dataset", where + ": expected an object with a string \"prompt\"");
    if (j["prompt"].get_ref<const std::string&>().empty())
      throw InvalidArgument("dataset", where + ": the prompt is empty");
    prompts.push_back(j["prompt"].get<std::string>());
  }
  if (prompts.empty())
    throw InvalidArgument("dataset", "dataset file '" + path + "' has no prompts");
  std::vector<BenchRequest> out(static_cast<size_t>(o.num_prompts));
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].text = prompts[i % prompts.size()];
    out[i].output_len = o.output_len;
  }
  return out;
}

}  // namespace herd::bench
