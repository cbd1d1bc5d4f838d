// The prompts a serving benchmark sends.
//
// Random prompts are token-id lists, sent as ids (both /v1/completions and gRPC Generate accept
// them, and add no BOS to them), so every request has exactly the input length asked for. The
// ids come from a pool: the distinct tokens of a fixed English text as the server's own
// tokenizer splits it. That keeps every id a valid, non-special token of whatever model is
// served without the client knowing its vocabulary; the model's cost does not depend on which
// ids it sees, and random sequences over ~100 ids do not collide, so unrelated prompts share no
// prefix-cache blocks. The shared-prefix mode (like vLLM's --random-prefix-len) puts the same
// prefix_len ids in front of every prompt: prompt length = prefix_len + input_len.
//
// A dataset is a JSONL file of {"prompt": "..."} lines, sent as text; the server's usage then
// gives the input token counts. Lines are used in file order, from the top again when the file
// holds fewer than num_prompts.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace herd::bench {

struct BenchRequest {
  std::vector<int32_t> ids;  // a token-id prompt (random mode), or
  std::string text;          // a text prompt (dataset mode)
  int prompt_len = 0;        // ids.size(); 0 for text until the server reports it
  int output_len = 0;
};

struct WorkloadOptions {
  int num_prompts = 0;
  int input_len = 0;
  int output_len = 0;
  int prefix_len = 0;
  uint64_t seed = 0;
};

// The text whose tokens make the pool.
std::string_view pool_text();
// The distinct ids of `ids`, ascending.
std::vector<int32_t> token_pool(std::vector<int32_t> ids);
// The pool from a tokenizer on this machine (`herd bench serve --tokenizer DIR`): the distinct
// non-special ids of pool_text(). Throws herd::InvalidArgument("tokenizer", ...) when DIR holds
// no loadable tokenizer.
std::vector<int32_t> local_token_pool(const std::string& tokenizer_dir);

std::vector<BenchRequest> random_workload(const WorkloadOptions& o,
                                          const std::vector<int32_t>& pool);
// Throws herd::InvalidArgument("dataset", ...) naming the file and line of anything unreadable.
std::vector<BenchRequest> dataset_workload(const WorkloadOptions& o, const std::string& path);

}  // namespace herd::bench
