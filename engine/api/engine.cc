// Engine::create: reads a model directory and picks the backend.
#include <cstdio>

#include "engine/api/backend_factory.h"
#include "engine/api/llm_engine.h"
#include "engine/api/parallel_engine.h"
#include "engine/common/error.h"
#include "engine/model/fp8_quantize.h"
#include "engine/model/weights.h"
#ifdef HERD_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

namespace herd {

std::unique_ptr<Backend> make_backend(const std::string& device, int threads,
                                      [[maybe_unused]] int cuda_device) {
  if (device == "cpu") return make_cpu_backend(threads);
  if (device != "cuda" && device != "auto")
    throw InvalidArgument("device", "--device must be cpu, cuda or auto, got '" + device + "'");
#ifdef HERD_HAVE_CUDA
  std::string why;
  if (cuda_device_available(&why)) return make_cuda_backend(cuda_device);
  if (device == "cuda") throw Error("--device cuda: " + why);
#else
  if (device == "cuda")
    throw Error("--device cuda: this herd was built without CUDA (build the `cuda` preset)");
#endif
  std::fprintf(stderr, "[herd] --device auto: no usable GPU, running on the CPU\n");
  return make_cpu_backend(threads);
}

std::unique_ptr<Engine> Engine::create(const EngineOptions& opts) {
  if (opts.threads < 0) throw InvalidArgument("threads", "--threads must be >= 0");
  if (wants_parallel_engine(opts)) return create_parallel_engine(opts);
  EngineParts parts;
  parts.config = load_model_config(opts.model_dir);
  parts.tokenizer = load_tokenizer(opts.model_dir);
  parts.backend = make_backend(opts.device, opts.threads);
  parts.weights = std::make_shared<const LlamaWeights>(
      load_llama_weights_quantized(opts.model_dir, parts.config, {}, opts.quantization));
  return std::make_unique<LlmEngine>(std::move(parts), opts);
}

}  // namespace herd
