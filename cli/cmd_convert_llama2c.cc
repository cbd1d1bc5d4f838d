// herd convert-llama2c: a llama2.c checkpoint + tokenizer .bin -> Hugging Face Llama directory
// (see engine/model/convert_llama2c.h).
#include <cstdio>

#include "cli/command.h"
#include "cli/flags.h"
#include "engine/common/error.h"
#include "engine/model/convert_llama2c.h"

namespace herd::cli {
namespace {

int run_convert(const std::vector<std::string>& args) {
  Flags f(args, {"checkpoint", "tokenizer", "output"});
  if (!f.positional().empty())
    throw InvalidArgument("", "unexpected argument '" + f.positional()[0] + "'");
  const std::string out = f.required("output");
  Llama2cHeader h = convert_llama2c(f.required("checkpoint"), f.required("tokenizer"), out);
  std::fprintf(stderr,
               "herd convert-llama2c: wrote %s (dim %d, %d layers, %d heads, %d kv heads, "
               "vocab %d%s)\n",
               out.c_str(), h.dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab_size,
               h.shared_classifier ? ", tied classifier" : "");
  return 0;
}

HERD_COMMAND("convert-llama2c", "--checkpoint FILE --tokenizer FILE --output DIR", run_convert);

}  // namespace
}  // namespace herd::cli
