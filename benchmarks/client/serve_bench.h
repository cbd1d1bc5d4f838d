// `herd bench serve` as a library call: validate the settings, build the workload, send one
// warm-up request (as vLLM does: it checks the settings end to end and is not counted), run the
// benchmark, print the table, and return the results JSON (vLLM's field names plus the
// settings, command line, date and machine).
#pragma once

#include <cstdint>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

namespace herd::bench {

struct ServeBenchConfig {
  std::string base_url;  // http://HOST:PORT (OpenAI routes), or
  std::string grpc;      // HOST:PORT (herd.v1.Herd)
  std::string model;     // required over HTTP; over gRPC the server's ModelInfo name by default
  std::string api_key;
  int num_prompts = 0;
  int input_len = 0;  // random prompts; 0 with a dataset
  int output_len = 0;
  int prefix_len = 0;   // shared prefix in front of every random prompt
  std::string dataset;  // JSONL of {"prompt": ...}
  // Random prompts' ids from this tokenizer (the served model's tokenizer.json directory)
  // instead of the server's /tokenize, which only herd has: then any OpenAI-compatible server
  // (vLLM, llama-server) can be measured with the same client.
  std::string tokenizer_dir;
  double request_rate = std::numeric_limits<double>::infinity();
  int max_concurrency = 0;  // 0: unlimited
  uint64_t seed = 0;
  std::string command_line;  // recorded as given
};

// Throws herd::InvalidArgument (naming the flag) for bad settings, herd::Error when the server
// cannot be reached or the warm-up request fails. Progress and the table go to `out`.
nlohmann::ordered_json run_serve_bench(const ServeBenchConfig& cfg, std::FILE* out);

// True when this build has the gRPC backend.
bool serve_bench_has_grpc();

}  // namespace herd::bench
