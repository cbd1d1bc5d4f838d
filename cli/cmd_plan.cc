// herd plan: will this model fit on these GPUs with this TP x PP layout, and how much KV cache
// is left per GPU? The arithmetic is engine/model/memory_plan.h; this file reads the flags and
// prints. Exit status: 0 fits, 3 does not fit (so a launch script can gate `mpirun` on it),
// 2 bad flags, 1 an unreadable --model directory.
#include <cstdio>

#include "cli/command.h"
#include "cli/flags.h"
#include "engine/common/error.h"
#include "engine/model/config.h"
#include "engine/model/memory_plan.h"

namespace herd::cli {
namespace {

constexpr int kExitDoesNotFit = 3;

DType parse_dtype(const std::string& flag, const std::string& s) {
  if (s == "bf16" || s == "bfloat16") return DType::kBF16;
  if (s == "f16" || s == "fp16" || s == "float16") return DType::kF16;
  if (s == "f32" || s == "fp32" || s == "float32") return DType::kF32;
  throw InvalidArgument(
      flag, "--" + flag +
                (flag == "dtype" ? " must be bf16, f16, f32 or fp8" : " must be bf16, f16 or f32") +
                ", got '" + s + "'");
}

// One value under either of two names (--tp / --tensor-parallel-size); both given is ambiguous.
int64_t aliased_i64(const Flags& f, const std::string& short_name, const std::string& long_name,
                    int64_t def) {
  if (f.has(short_name) && f.has(long_name))
    throw InvalidArgument(long_name, "give --" + short_name + " or --" + long_name + ", not both");
  return f.has(short_name) ? f.i64(short_name, def) : f.i64(long_name, def);
}

int checked_int(int64_t v, const std::string& flag, int64_t lo, int64_t hi) {
  if (v < lo || v > hi)
    throw InvalidArgument(flag, "--" + flag + " must be between " + std::to_string(lo) + " and " +
                                    std::to_string(hi) + ", got " + std::to_string(v));
  return int(v);
}

int run_plan(const std::vector<std::string>& args) {
  Flags f(args,
          {"shape", "model", "tp", "tensor-parallel-size", "pp", "pipeline-parallel-size",
           "micro-batches", "dtype", "kv-dtype", "gpu-memory-gb", "gpu-memory-utilization",
           "max-model-len", "max-num-seqs", "max-num-batched-tokens", "block-size", "reserve-gb"},
          {"fp8-ffn", "json"});
  if (!f.positional().empty())
    throw InvalidArgument("", "unexpected argument '" + f.positional()[0] + "'");
  if (f.has("shape") == f.has("model"))
    throw InvalidArgument("shape", "give exactly one of --shape NAME or --model DIR");

  const PlanShape shape =
      f.has("shape")
          ? plan_shape_named(f.str("shape", ""))
          : plan_shape_from_config(load_model_config(f.str("model", "")), f.str("model", ""));
  PlanOptions o;
  // Bounds here only keep the int conversions exact; plan_memory() checks what makes sense
  // for the model (heads divisible by tp, layers >= pp).
  o.tensor_parallel_size =
      checked_int(aliased_i64(f, "tp", "tensor-parallel-size", 1), "tensor-parallel-size", 1, 4096);
  o.pipeline_parallel_size = checked_int(aliased_i64(f, "pp", "pipeline-parallel-size", 1),
                                         "pipeline-parallel-size", 1, 4096);
  o.micro_batches = checked_int(f.i64("micro-batches", 0), "micro-batches", 0, 4096);
  // --dtype fp8: what herd runs as FP8 (issue 11) — BF16 weights with row-wise FP8
  // feed-forward layers except the first and last, i.e. --dtype bf16 --fp8-ffn.
  const std::string dtype = f.str("dtype", "bf16");
  const bool fp8 = dtype == "fp8";
  o.weight_dtype = fp8 ? DType::kBF16 : parse_dtype("dtype", dtype);
  o.kv_dtype = parse_dtype("kv-dtype", f.str("kv-dtype", "bf16"));
  o.fp8_ffn = fp8 || f.has("fp8-ffn");
  if (!f.has("gpu-memory-gb"))
    throw InvalidArgument("gpu-memory-gb",
                          "missing required flag --gpu-memory-gb (GiB per GPU, e.g. 80)");
  o.gpu_memory_gib = f.f64("gpu-memory-gb", 0);
  o.gpu_memory_utilization = f.f64("gpu-memory-utilization", o.gpu_memory_utilization);
  o.max_model_len = f.i64("max-model-len", o.max_model_len);
  o.max_num_seqs = f.i64("max-num-seqs", o.max_num_seqs);
  o.max_num_batched_tokens = f.i64("max-num-batched-tokens", o.max_num_batched_tokens);
  o.block_size = f.i64("block-size", o.block_size);
  const double reserve_gib = f.f64("reserve-gb", double(o.runtime_reserve_bytes) / (1 << 30));
  if (!(reserve_gib >= 0 && reserve_gib < 1e6))
    throw InvalidArgument("reserve-gb", "--reserve-gb must be >= 0");
  o.runtime_reserve_bytes = int64_t(reserve_gib * double(int64_t(1) << 30));

  const MemoryPlan p = plan_memory(shape, o);
  if (f.has("json"))
    std::printf("%s\n", plan_to_json(p).dump(2).c_str());
  else
    std::fputs(format_plan(p).c_str(), stdout);
  return p.fits ? 0 : kExitDoesNotFit;
}

HERD_COMMAND("plan",
             "(--shape llama3-8b|llama3-70b|llama3-405b|... | --model DIR) --gpu-memory-gb GIB "
             "[--tp|--tensor-parallel-size N] [--pp|--pipeline-parallel-size N] "
             "[--micro-batches M] [--dtype bf16|f16|f32|fp8] [--kv-dtype bf16|f16|f32] [--fp8-ffn] "
             "[--gpu-memory-utilization 0.9] [--max-model-len N] [--max-num-seqs 256] "
             "[--max-num-batched-tokens 2048] [--block-size 16] [--reserve-gb 1] [--json]; "
             "exit 0 fits, 3 does not fit",
             run_plan);

}  // namespace
}  // namespace herd::cli
