// herd logits: runs the model on given token ids without an engine (no scheduler, no sampler)
// and prints what a reference implementation can be compared against: the argmax of every
// prompt position's logits, and a greedy (argmax) continuation of --greedy tokens computed one
// decode step at a time through the paged KV cache, as the engine runs it. With --out FILE the
// fp32 logits of every prompt position are written as a NumPy .npy array [prompt_len, vocab]
// (little-endian '<f4', C order). benchmarks/gpu/hf_compare.py compares them with Hugging
// Face transformers' LlamaForCausalLM.
//
// stdout: one JSON object {"model", "device", "prompt_len", "vocab", "top1", "greedy",
// "prefill_seconds", "out"}.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "benchmarks/bench_util.h"
#include "cli/command.h"
#include "cli/flags.h"
#include "engine/api/backend_factory.h"
#include "engine/common/error.h"
#include "engine/model/config.h"
#include "engine/model/llama.h"
#include "engine/model/single_sequence_step.h"
#include "engine/model/weights.h"

namespace herd::cli {
namespace {

constexpr int kBlockSize = 16;

// "1,2,3" or "1 2 3" or "[1, 2, 3]".
std::vector<int32_t> parse_ids(const std::string& s, int64_t vocab) {
  std::string t = s;
  for (char& c : t)
    if (c == ',' || c == '[' || c == ']') c = ' ';
  std::istringstream in(t);
  std::vector<int32_t> ids;
  std::string tok;
  while (in >> tok) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(tok, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != tok.size())
      throw InvalidArgument("prompt-ids", "--prompt-ids: '" + tok + "' is not an integer");
    if (v < 0 || v >= vocab)
      throw InvalidArgument("prompt-ids", "--prompt-ids: token id " + tok +
                                              " is outside the vocab of " + std::to_string(vocab));
    ids.push_back(int32_t(v));
  }
  if (ids.empty()) throw InvalidArgument("prompt-ids", "--prompt-ids must list at least one id");
  return ids;
}

int32_t argmax(const float* row, int64_t n) {
  return int32_t(std::max_element(row, row + n) - row);
}

void write_npy(const std::string& path, const std::vector<float>& data, int64_t rows,
               int64_t cols) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       std::to_string(rows) + ", " + std::to_string(cols) + "), }";
  // magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of
  // 64 and ended by '\n'.
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open for writing (--out)");
  const char magic[8] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0};
  f.write(magic, 8);
  const uint16_t len = uint16_t(header.size());
  const char len_le[2] = {char(len & 0xff), char(len >> 8)};
  f.write(len_le, 2);
  f.write(header.data(), std::streamsize(header.size()));
  f.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size() * sizeof(float)));
  if (!f) throw Error(path + ": write failed (--out)");
}

int run_logits(const std::vector<std::string>& args) {
  Flags f(args, {"model", "prompt-ids", "device", "threads", "greedy", "out"});
  if (!f.positional().empty())
    throw InvalidArgument("", "unexpected argument '" + f.positional()[0] + "'");
  const std::string dir = f.required("model");
  const std::string device = f.str("device", "cpu");
  const int64_t threads = f.i64("threads", 0);
  if (threads < 0) throw InvalidArgument("threads", "--threads must be >= 0");
  const int64_t greedy = f.i64("greedy", 0);
  if (greedy < 0 || greedy > 4096) throw InvalidArgument("greedy", "--greedy must be in [0, 4096]");

  const ModelConfig cfg = load_model_config(dir);
  std::vector<int32_t> ids = parse_ids(f.required("prompt-ids"), cfg.vocab_size);
  const int prompt_len = int(ids.size());
  const int64_t total = prompt_len + greedy;
  if (cfg.max_position_embeddings > 0 && total > cfg.max_position_embeddings)
    throw InvalidArgument("greedy", "prompt + --greedy exceed max_position_embeddings (" +
                                        std::to_string(cfg.max_position_embeddings) + ")");

  auto backend = make_backend(device, int(threads));
  auto weights = std::make_shared<const LlamaWeights>(load_llama_weights(dir, cfg));
  // All prompt rows' logits come out of one step: max_seqs bounds the logits rows.
  LlamaModel model(cfg, weights, *backend, prompt_len, prompt_len);
  const int max_blocks = int((total + kBlockSize - 1) / kBlockSize);
  KvCache kv(*backend, cfg, max_blocks, kBlockSize);

  const int64_t V = cfg.vocab_size;
  StepInput in = single_sequence_step(ids, 0, prompt_len, max_blocks, kBlockSize);
  for (int i = 0; i < prompt_len; ++i) in.logits_rows.push_back(i);
  std::vector<float> logits(size_t(prompt_len) * size_t(V));
  const auto t0 = bench::Clock::now();
  model.forward(in, kv, logits.data());
  const double prefill_s = bench::seconds_since(t0);

  nlohmann::ordered_json j;
  j["model"] = dir;
  j["device"] = device;
  j["prompt_len"] = prompt_len;
  j["vocab"] = V;
  std::vector<int32_t> top1;
  for (int i = 0; i < prompt_len; ++i) top1.push_back(argmax(&logits[size_t(i) * size_t(V)], V));
  j["top1"] = top1;

  std::vector<int32_t> cont;
  std::vector<float> row(static_cast<size_t>(V));
  int32_t next = top1.back();
  for (int64_t g = 0; g < greedy; ++g) {
    cont.push_back(next);
    if (g + 1 == greedy) break;
    ids.push_back(next);
    const int len = int(ids.size());
    StepInput d = single_sequence_step(ids, len - 1, len, max_blocks, kBlockSize);
    d.logits_rows = {0};
    model.forward(d, kv, row.data());
    next = argmax(row.data(), V);
  }
  j["greedy"] = cont;
  j["prefill_seconds"] = prefill_s;
  const std::string out = f.str("out", "");
  if (!out.empty()) write_npy(out, logits, prompt_len, V);
  j["out"] = out;
  std::cout << j.dump() << "\n";
  return 0;
}

HERD_COMMAND("logits",
             "--model DIR --prompt-ids 1,2,3 [--device cpu|cuda|auto] [--threads N] "
             "[--greedy N] [--out FILE.npy]",
             run_logits);

}  // namespace
}  // namespace herd::cli
