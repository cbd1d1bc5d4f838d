#include "engine/api/parallel_engine.h"

#include <algorithm>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "engine/api/backend_factory.h"
#include "engine/api/llm_engine.h"
#include "engine/common/error.h"
#include "engine/exec/rank_executor.h"
#include "engine/model/fp8_quantize.h"
#include "engine/model/weights.h"
#include "engine/parallel/mpi_communicator.h"
#ifdef HERD_HAVE_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/nccl_communicator.h"
#endif

namespace herd {
namespace {

// How long a failed job keeps rank 0 alive before ending every rank, so that /health and the
// requests in flight report the reason first.
constexpr auto kFatalGrace = std::chrono::seconds(2);

// The most KV bytes one block takes on any rank (stages differ in layer count).
size_t max_block_bytes(const EngineOptions& o, const ModelConfig& cfg, DType kv_dtype,
                       int world) {
  size_t most = 0;
  for (int r = 0; r < world; ++r) {
    const RankLayout l =
        make_rank_layout(o.parallel, int(cfg.num_hidden_layers), int(cfg.num_attention_heads),
                         int(cfg.num_key_value_heads), world, r);
    most = std::max(most, KvCache::bytes_per_block(cfg, o.block_size, kv_dtype, l));
  }
  return most;
}

}  // namespace

bool wants_parallel_engine(const EngineOptions& opts) {
  return opts.parallel.world_size() > 1 || MpiRuntime::launched_by_mpi();
}

void finalize_parallel() {
  if (MpiRuntime::mpi_initialized()) MpiRuntime::instance().finalize();
}

std::unique_ptr<Engine> create_parallel_engine(const EngineOptions& opts) {
  const int want = opts.parallel.world_size();
  if (!MpiRuntime::launched_by_mpi())
    throw InvalidArgument("tensor-parallel-size",
                          "--tensor-parallel-size x --pipeline-parallel-size = " +
                              std::to_string(want) + " ranks: start herd under mpirun -np " +
                              std::to_string(want) + " (see README: parallel serving)");
  MpiRuntime& mpi = MpiRuntime::instance();
  MpiCommunicator& world = mpi.world();
  world.set_timeout_ms(opts.comm_timeout_ms);
  const int rank = mpi.world_rank();

  ModelConfig cfg = load_model_config(opts.model_dir);
  RankLayout layout;
  try {
    layout = make_rank_layout(opts.parallel, int(cfg.num_hidden_layers),
                              int(cfg.num_attention_heads), int(cfg.num_key_value_heads),
                              mpi.world_size(), rank);
  } catch (const InvalidArgument&) {
    // Every rank finds the same fault: rank 0 reports it (the caller prints it and exits 2);
    // the others leave quietly a moment later, so the job ends with one message.
    if (rank == 0) throw;
    std::this_thread::sleep_for(std::chrono::seconds(1));
    finalize_parallel();
    std::_Exit(2);
  }
  std::fprintf(stderr, "[herd] %s\n", describe(layout).c_str());
  // Sub-communicators live as long as the process (the executor and workers use them).
  static std::unique_ptr<Communicator> tp_group;
  tp_group = world.split(layout.pp_rank, layout.tp_rank);

  // One GPU per rank of a node: Open MPI's local rank picks it.
  const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
  std::unique_ptr<Backend> backend =
      make_backend(opts.device, opts.threads, local ? std::atoi(local) : 0);
  std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(opts.model_dir);
  const std::vector<int32_t> eos = eos_ids_of(cfg, *tokenizer);
  auto weights = std::make_shared<const LlamaWeights>(
      load_llama_weights_quantized(opts.model_dir, cfg, layout, opts.quantization));
  const size_t block_bytes = max_block_bytes(opts, cfg, backend->kv_dtype(), mpi.world_size());

  // Rank 0 decides the shape (it owns the scheduler config); every rank allocates the same.
  RunnerShape shape;
  if (rank == 0) {
    const SchedulerConfig sc = make_scheduler_config(opts, cfg, block_bytes);
    shape.num_blocks = sc.num_blocks;
    shape.block_size = sc.block_size;
    shape.max_tokens = sc.max_num_batched_tokens;
    shape.max_seqs = sc.max_num_seqs;
  }
  world.broadcast(&shape, sizeof(shape), 0);

  Communicator* tp = layout.tp_size > 1 ? tp_group.get() : nullptr;
  Communicator* activations = layout.pp_size > 1 ? &world : nullptr;
#ifdef HERD_HAVE_CUDA
  // On GPUs the activations (all-reduce, stage to stage) live in device memory: NCCL carries
  // them on the backend's stream, bootstrapped over the MPI groups above. Plans and tokens
  // still travel over MPI (host bytes). Unverified on hardware (no multi-GPU machine here).
  static std::unique_ptr<Communicator> nccl_tp, nccl_world;
  if (backend->name() == "cuda") {
    auto stream = static_cast<cudaStream_t>(cuda_stream_of(*backend));
    if (tp) tp = (nccl_tp = std::make_unique<NcclCommunicator>(*tp_group, stream)).get();
    if (activations)
      activations = (nccl_world = std::make_unique<NcclCommunicator>(world, stream)).get();
  }
#endif
  auto runner = std::make_unique<ModelRunner>(cfg, weights, *backend, shape, eos, layout, tp,
                                              activations);
  if (rank != 0) {
    // mpirun forwards SIGINT/SIGTERM to every rank; only rank 0 decides when the job ends
    // (it drains, then sends stop), so workers must not die under its in-flight plans.
    std::signal(SIGINT, SIG_IGN);
    std::signal(SIGTERM, SIG_IGN);
    try {
      run_worker_rank(*runner, world, layout);
    } catch (const std::exception& e) {
      MpiRuntime::abort_job(1, e.what());
    }
    runner.reset();
    finalize_parallel();
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(0);
  }

  EngineParts parts;
  parts.config = std::move(cfg);
  parts.weights = std::move(weights);
  parts.tokenizer = std::move(tokenizer);
  parts.kv_block_bytes = block_bytes;
  parts.executor = std::make_unique<RankExecutor>(
      std::move(runner), world, layout, [](const std::string& error) {
        std::this_thread::sleep_for(kFatalGrace);
        MpiRuntime::abort_job(1, error);
      });
  parts.backend = std::move(backend);  // outlives the executor (LlmEngine's member order)
  return std::make_unique<LlmEngine>(std::move(parts), opts);
}

}  // namespace herd
