// Seeded tiny make-model checkpoints (fp32), written once per test process: the eval tests need
// only the model library, not the engine (tests/api/engine_test_util.h has the engine's twin).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "engine/model/make_model.h"
#include "tests/model/checkpoint_test_util.h"

namespace herd::eval::testing {

inline const std::string& tiny_model_dir(const std::string& shape = "tiny") {
  static std::map<std::string, std::unique_ptr<herd::testing::ScratchDir>> dirs;
  auto& d = dirs[shape];
  if (!d) {
    d = std::make_unique<herd::testing::ScratchDir>();
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

}  // namespace herd::eval::testing
