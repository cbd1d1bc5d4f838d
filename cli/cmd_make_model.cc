// herd make-model: a Llama checkpoint directory with seeded random weights (see
// engine/model/make_model.h).
#include <cstdio>

#include "cli/command.h"
#include "cli/flags.h"
#include "engine/common/error.h"
#include "engine/model/make_model.h"

namespace herd::cli {
namespace {

DType parse_dtype_flag(const std::string& s) {
  if (s == "bf16") return DType::kBF16;
  if (s == "f16") return DType::kF16;
  if (s == "f32") return DType::kF32;
  throw InvalidArgument("dtype", "--dtype must be bf16, f16 or f32, got '" + s + "'");
}

int run_make_model(const std::vector<std::string>& args) {
  Flags f(args, {"shape", "output", "tokenizer", "seed", "dtype", "threads"});
  if (!f.positional().empty())
    throw InvalidArgument("", "unexpected argument '" + f.positional()[0] + "'");
  MakeModelOptions o;
  o.shape = f.str("shape", "tiny");
  bool known = false;
  for (const auto& n : make_model_shape_names()) known |= n == o.shape;
  if (!known) {
    std::string list;
    for (const auto& n : make_model_shape_names()) list += (list.empty() ? "" : ", ") + n;
    throw InvalidArgument("shape", "unknown --shape '" + o.shape + "' (known: " + list + ")");
  }
  o.output = f.required("output");
  o.tokenizer_dir = f.str("tokenizer", "");
  const int64_t seed = f.i64("seed", 0);
  if (seed < 0) throw InvalidArgument("seed", "--seed must be >= 0");
  o.seed = uint64_t(seed);
  o.dtype = parse_dtype_flag(f.str("dtype", "bf16"));
  o.threads = int(f.i64("threads", 0));
  make_model(o);
  std::fprintf(stderr, "herd make-model: wrote %s (shape %s, seed %llu)\n", o.output.c_str(),
               o.shape.c_str(), static_cast<unsigned long long>(o.seed));
  return 0;
}

HERD_COMMAND("make-model",
             "--output DIR [--shape tiny|tiny-tied|tiny-128k|llama3.2-1b|llama3.2-3b|llama3-8b|"
             "llama3-70b|llama3-405b] [--tokenizer DIR] [--seed N] [--dtype bf16|f16|f32] "
             "[--threads N]",
             run_make_model);

}  // namespace
}  // namespace herd::cli
