// Executor: runs step plans on the model runner(s) and hands back sampled tokens.
//
//   LocalExecutor      one process: one ModelRunner on the executor's own thread
//   RankExecutor       many MPI ranks (TP x PP): rank 0 sends each plan to every rank, the
//                      stages pass activations point to point, the last stage samples and
//                      answers rank 0 (engine/exec/rank_executor.h)
//
// Plans run in submission order; submit() never waits for the model, so the engine core plans
// step i+1 (and, with micro-batches, i+2...) while step i runs. A failure of the step (backend
// error, a dead or hung rank) is delivered as the future's exception.
#pragma once

#include <functional>
#include <future>
#include <span>
#include <string>

#include "engine/exec/exec_plan.h"

namespace herd {

// Test hook: sees every logits row before it is sampled, on the executor's thread.
using LogitsHook =
    std::function<void(const std::string& request_id, int sample_index, std::span<float> row)>;

class Executor {
 public:
  virtual ~Executor() = default;
  // on_done (may be empty) is called on the executor's thread right after the future became
  // ready (value or exception), with no executor lock held: the engine core wakes up on it.
  virtual std::future<ExecResult> submit(ExecPlan plan, std::function<void()> on_done = {}) = 0;
  // Whether plans may carry late_masks (ExecPlan): only where sampling runs in this process
  // after submit() returned; a plan sent to other ranks must be complete when submitted.
  virtual bool takes_late_masks() const { return false; }
  // Only where the logits are in this process (LocalExecutor); others throw.
  virtual void set_logits_hook(LogitsHook hook) = 0;
  // Stops after the plans already submitted; idempotent.
  virtual void shutdown() = 0;
};

}  // namespace herd
