// The checkpoint a whole-model benchmark runs on (bench_decode, bench_fp8): --model DIR as
// given, with a random `shape` BF16 checkpoint written there when DIR has no config.json, or
// without --model a temporary directory that is removed when this object goes (also on an
// exception). And the bytes of weights one decode step reads from it.
#pragma once

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "benchmarks/bench_util.h"
#include "engine/common/error.h"
#include "engine/model/make_model.h"
#include "engine/model/weights.h"

namespace herd::bench {

class BenchCheckpoint {
 public:
  // `program` names the temporary directory and the error; prints one "checkpoint:" line.
  BenchCheckpoint(const std::string& dir, const std::string& shape, int threads,
                  const std::string& program) {
    namespace fs = std::filesystem;
    dir_ = dir;
    if (dir_.empty()) {
      std::string templ = (fs::temp_directory_path() / (program + "-XXXXXX")).string();
      if (!mkdtemp(templ.data())) throw Error(program + ": cannot create " + templ);
      dir_ = templ;
      temporary_ = true;
    }
    if (fs::exists(fs::path(dir_) / "config.json")) {
      std::printf("checkpoint: %s (existing)\n", dir_.c_str());
      return;
    }
    MakeModelOptions mo;
    mo.shape = shape;
    mo.output = dir_;
    mo.threads = threads;
    mo.write_tokenizer = false;
    const auto t0 = Clock::now();
    make_model(mo);
    std::printf("checkpoint: wrote random %s bf16 weights to %s in %.1f s\n", shape.c_str(),
                dir_.c_str(), seconds_since(t0));
  }
  ~BenchCheckpoint() {
    std::error_code ec;
    if (temporary_) std::filesystem::remove_all(dir_, ec);
  }
  BenchCheckpoint(const BenchCheckpoint&) = delete;
  BenchCheckpoint& operator=(const BenchCheckpoint&) = delete;

  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  bool temporary_ = false;
};

// Bytes one decode step reads: every linear weight (with FP8 row scales) and the lm_head; the
// embedding rows a step reads are negligible, and with tied embeddings the table is the lm_head.
inline double step_weight_bytes(const LlamaWeights& w) {
  double b = double(w.lm_head.bytes());
  for (const auto& l : w.layers)
    for (const Tensor* t : {&l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.gate_proj, &l.up_proj,
                            &l.down_proj, &l.gate_proj_scale, &l.up_proj_scale, &l.down_proj_scale})
      b += double(t->bytes());
  return b;
}

}  // namespace herd::bench
