// Seeded tiny make-model checkpoints (fp32), written once per test process. Needs only the
// model library, so engine tests (tests/api/engine_test_util.h) and model-level tests
// (tests/eval) share it.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "engine/model/make_model.h"
#include "tests/model/checkpoint_test_util.h"

namespace herd::testing {

// A make-model checkpoint of `shape` (fp32 weights, seed 7), written once per process.
inline const std::string& tiny_model_dir(const std::string& shape = "tiny") {
  static std::map<std::string, std::unique_ptr<ScratchDir>> dirs;
  auto& d = dirs[shape];
  if (!d) {
    d = std::make_unique<ScratchDir>();
    MakeModelOptions o;
    o.shape = shape;
    o.output = d->path();
    o.seed = 7;
    o.dtype = DType::kF32;
    o.threads = 2;
    make_model(o);
  }
  return d->path();
}

}  // namespace herd::testing
