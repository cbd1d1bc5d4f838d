// The engine of a TP x PP job (mpirun -np T*P herd ...). Every rank calls Engine::create with
// the same options; create() sends the job here when T*P > 1 or MPI started the process.
//
//   rank 0      loads its shard, builds a RankExecutor and returns the LlmEngine (engine core:
//               requests, scheduler, outputs) — the server, CLI or benchmark runs on it
//   other ranks load their shard and serve rank 0's plans (run_worker_rank) until rank 0's
//               engine shuts down; then the process exits 0 — create() never returns there
//
// Each rank sizes its KV cache from the same rule (--kv-cache-gb over the largest per-rank
// block of any stage), and rank 0 broadcasts the runner shape so every rank agrees. A failure
// to talk to a peer ends the whole job with one message (MpiRuntime::abort_job).
#pragma once

#include <memory>

#include "engine/api/engine.h"

namespace herd {

std::unique_ptr<Engine> create_parallel_engine(const EngineOptions& opts);

// Whether Engine::create must go through create_parallel_engine.
bool wants_parallel_engine(const EngineOptions& opts);

// MPI_Finalize when MPI runs, before a process ends with _Exit (herd serve).
void finalize_parallel();

}  // namespace herd
