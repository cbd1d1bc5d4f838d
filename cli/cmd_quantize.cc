// herd quantize: a BF16/F16/F32 Llama checkpoint -> Meta's fbgemm_fp8 layout (row-wise FP8
// feed-forward weights with F32 row scales; see engine/model/fp8_quantize.h).
#include <cstdio>
#include <sstream>

#include "cli/command.h"
#include "cli/flags.h"
#include "engine/common/error.h"
#include "engine/model/fp8_quantize.h"

namespace herd::cli {
namespace {

int run_quantize(const std::vector<std::string>& args) {
  Flags f(args, {"input", "output", "activation-scale-ub", "keep-bf16"}, {"fp8-rowwise"});
  if (!f.positional().empty())
    throw InvalidArgument("", "unexpected argument '" + f.positional()[0] + "'");
  if (!f.has("fp8-rowwise"))
    throw InvalidArgument("fp8-rowwise",
                          "say which quantization: --fp8-rowwise (the only one herd writes)");
  Fp8QuantizeOptions o;
  const double ub = f.f64("activation-scale-ub", o.activation_scale_ub);
  if (!(ub > 0 && ub < 1e30))
    throw InvalidArgument("activation-scale-ub", "--activation-scale-ub must be > 0");
  o.activation_scale_ub = float(ub);
  o.keep_first = o.keep_last = false;
  std::stringstream keep(f.str("keep-bf16", "first,last"));
  for (std::string item; std::getline(keep, item, ',');) {
    if (item == "first")
      o.keep_first = true;
    else if (item == "last")
      o.keep_last = true;
    else if (item != "none" && !item.empty())
      throw InvalidArgument(
          "keep-bf16", "--keep-bf16 takes first, last, first,last or none; got '" + item + "'");
  }
  const std::string in = f.required("input"), out = f.required("output");
  quantize_checkpoint_fp8(in, out, o);
  std::fprintf(stderr,
               "herd quantize: wrote %s (fbgemm_fp8: row-wise FP8 feed-forward, "
               "activation_scale_ub %g, kept in BF16: %s%s%s)\n",
               out.c_str(), double(o.activation_scale_ub), o.keep_first ? "first " : "",
               o.keep_last ? "last " : "", !o.keep_first && !o.keep_last ? "none" : "layer(s)");
  return 0;
}

HERD_COMMAND("quantize",
             "--input DIR --output DIR --fp8-rowwise [--activation-scale-ub 1200] "
             "[--keep-bf16 first,last|none]",
             run_quantize);

}  // namespace
}  // namespace herd::cli
