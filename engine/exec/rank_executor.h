// RankExecutor: the executor of a TP x PP job over MPI ranks (engine/parallel). It lives on
// rank 0 (TP rank 0 of the first stage), beside the engine core; every other rank runs
// run_worker_rank().
//
// One step, plan i:
//   rank 0      sends plan i (plan_codec bytes) to every other rank, runs its own stage-0 part
//               (TP collectives with the other stage-0 ranks inside the forward)
//   stage s     receives plan i from rank 0 and the hidden states of plan i from stage s-1 (same
//               TP rank), runs its layers, sends its hidden states on to stage s+1
//   last stage  gathers the vocabulary-parallel logits on its TP rank 0, which samples and sends
//               the token ids (+ requested logprobs) of plan i to rank 0
// Rank 0 does not wait for plan i's tokens before starting plan i+1: with M plans in flight
// (micro-batches) stage 0 works on plan i+1 while stage 1 works on plan i. Messages between
// two ranks arrive in order, so plans need no ids on the wire to match (they carry one anyway
// and it is checked).
//
// Threads: all MPI calls of rank 0 happen on the executor's thread (MPI_THREAD_SERIALIZED is
// enough); the engine core only queues plans. Failure: a communication timeout or a malformed
// message fails every plan in flight (the engine turns unhealthy, /health says why) and then
// calls on_fatal, which ends the job (MPI_Abort) so no rank is left hanging.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "engine/exec/executor.h"
#include "engine/exec/model_runner.h"
#include "engine/parallel/communicator.h"
#include "engine/parallel/layout.h"

namespace herd {

class RankExecutor final : public Executor {
 public:
  using FatalHandler = std::function<void(const std::string& error)>;
  // `world`: every rank of the job; `runner`: rank 0's own stage part.
  RankExecutor(std::unique_ptr<ModelRunner> runner, Communicator& world, const RankLayout& layout,
               FatalHandler on_fatal);
  ~RankExecutor() override;

  std::future<ExecResult> submit(ExecPlan plan, std::function<void()> on_done = {}) override;
  void set_logits_hook(LogitsHook hook) override;
  void shutdown() override;  // tells every worker to stop, then joins

 private:
  struct Job {
    ExecPlan plan;
    std::promise<ExecResult> result;
    std::function<void()> on_done;
  };
  void loop();
  void fail_all(const std::string& error);

  std::unique_ptr<ModelRunner> runner_;
  Communicator& world_;
  RankLayout layout_;
  int sampler_rank_;
  FatalHandler on_fatal_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::string failed_;  // set once the loop failed: later submits fail at once
  // Executor thread only: plans sent down the pipeline whose tokens have not come back.
  struct Pending {
    uint64_t id = 0;
    std::promise<ExecResult> result;
    std::function<void()> on_done;
  };
  std::deque<Pending> pending_;
  std::thread thread_;
};

// The loop of every rank but 0: receive plans from rank 0 and run this rank's part until rank
// 0 says stop. Throws CommError / herd::Error on a failed exchange (the caller ends the job).
void run_worker_rank(ModelRunner& runner, Communicator& world, const RankLayout& layout);

}  // namespace herd
