// Seeded tiny make-model checkpoints (fp32 by default), written once per test process. Needs only
// the model library, so engine tests (tests/api/engine_test_util.h) and model-level tests
// (tests/eval) share it.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "engine/model/make_model.h"
#include "tests/model/checkpoint_test_util.h"

namespace herd::testing {

// A make-model checkpoint of `shape` (seed 7; fp32 weights unless `dtype` says otherwise:
// BF16 weights run on the CPU backend's BF16 GEMM where the CPU has one), written once per
// process.
inline const std::string& tiny_model_dir(const std::string& shape = "tiny",
                                         DType dtype = DType::kF32) {
  static std::map<std::pair<std::string, DType>, std::unique_ptr<ScratchDir>> dirs;
  auto& d = dirs[{shape, dtype}];
  if (!d) {
    d = std::make_unique<ScratchDir>();
    MakeModelOptions o;
    o.shape = shape;
    o.output = d->path();
    o.seed = 7;
    o.dtype = dtype;
    o.threads = 2;
    make_model(o);
  }
  return d->path();
}

}  // namespace herd::testing
