// MpiCommunicator: the Communicator over an MPI communicator, on host memory (CPU ranks, and
// the control messages of GPU ranks). MpiRuntime: MPI's initialization for the process.
//
// Deadlines: MPI's blocking calls wait forever, so a dead or hung peer would hang every rank.
// Each operation here is started nonblocking (MPI_Isend, MPI_Iallreduce, ...) and then polled
// with MPI_Test until a deadline, sleeping between polls (a few microseconds, doubling up to
// 1 ms) so that ranks oversubscribed on few cores leave the CPU to the rank that computes.
// On timeout the call throws CommError naming the operation and the peer.
//
// After a CommError only a timed-out recv / recv_bytes leaves the communicator usable (the
// receive is cancelled). A send or collective that timed out cannot be withdrawn from MPI
// (its buffers stay registered with it), so the caller must end the job: MpiRuntime::abort_job.
//
// Threads: MPI is initialized with MPI_THREAD_SERIALIZED. At most one thread at a time may
// call into MPI (any MpiCommunicator, MpiRuntime); a rank drives all its communication from
// one thread (the executor's), and nothing here locks.
#pragma once

// Only MPI's C API is used; keep the deprecated C++ bindings out of every includer.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <memory>
#include <string>
#include <chrono>
#include <deque>
#include <vector>

#include "engine/parallel/communicator.h"

namespace herd {

// Long enough for the slowest step a peer may legitimately take between two exchanges
// (a long prefill on CPU); callers waiting on weight loading or idle peers use wait_forever
// or set_timeout_ms.
inline constexpr int64_t kDefaultCommTimeoutMs = 120'000;

class MpiCommunicator final : public Communicator {
 public:
  // `owned`: the communicator is MPI_Comm_free'd by the destructor (split results); the world
  // communicator is not owned.
  MpiCommunicator(MPI_Comm comm, bool owned, int64_t timeout_ms = kDefaultCommTimeoutMs);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int64_t timeout_ms() const override { return timeout_ms_; }
  void set_timeout_ms(int64_t ms) { timeout_ms_ = ms; }
  MPI_Comm comm() const { return comm_; }

  // F32, F16, BF16 and I32. 16-bit sums: MPI has no bf16/fp16 type, so the values are widened
  // into an fp32 scratch, summed as floats and rounded once.
  void all_reduce_sum(void* data, size_t count, DType dtype) override;
  void all_gather(const void* send, void* recv, size_t count, DType dtype) override;
  void broadcast(void* data, size_t bytes, int root) override;
  void send(const void* data, size_t bytes, int peer, int tag) override;
  void recv(void* data, size_t bytes, int peer, int tag) override;
  // Returns once the message is queued (a copy is kept until MPI is done with it): Open MPI
  // does not complete even a small send while its receiver computes (after a large message to
  // the same peer it waits for the receiver to enter MPI), and rank 0 must not sit idle until
  // a busy stage takes its next plan. Order per (peer, tag) is kept; a send still undelivered
  // after timeout_ms() throws CommError at a later send_bytes / recv_bytes / poll_bytes.
  void send_bytes(const std::vector<uint8_t>& bytes, int peer, int tag) override;
  std::vector<uint8_t> recv_bytes(int peer, int tag, bool wait_forever = false) override;
  bool poll_bytes(int peer, int tag) override;
  void barrier() override;
  // MPI_Comm_split is blocking with no deadline, so every rank first meets in a barrier with
  // one; once all have arrived the split itself cannot hang.
  std::unique_ptr<Communicator> split(int color, int key) override;

 private:
  // Polls `req` until it completes or the deadline passes (none with `forever`). On timeout a
  // receive is cancelled (and returns normally if the message arrived meanwhile); anything
  // else stays pending. Then throws CommError "rank R: <what> got no answer within N ms".
  void wait(MPI_Request& req, MPI_Status* status, const std::string& what, bool is_recv,
            bool forever = false);
  std::string with_peer(const char* op, int peer, int tag) const;
  std::string over_all(const char* op) const;
  int world_rank_of(int rank) const;  // for messages: peers are named by their world rank
  // Completes queued byte sends that are done; throws CommError for one past its deadline.
  void reap_sends();

  struct QueuedSend {
    MPI_Request req;
    std::vector<uint8_t> bytes;
    std::chrono::steady_clock::time_point since;
    int peer, tag;
  };
  std::deque<QueuedSend> queued_sends_;

  MPI_Comm comm_;
  bool owned_;
  int64_t timeout_ms_;
  int rank_ = 0, size_ = 1, world_rank_ = 0;
};

// MPI for this process: initialized only when the process was started by mpirun / an MPI
// launcher (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK in the environment). A plain
// `herd serve` makes no MPI call at all and is world rank 0 of 1.
class MpiRuntime {
 public:
  // The process-wide runtime; the first call initializes MPI (MPI_Init_thread with
  // MPI_THREAD_SERIALIZED; throws herd::Error when the library provides less). MPI_Finalize
  // runs at exit.
  static MpiRuntime& instance();
  // Whether an MPI launcher started this process (environment only; initializes nothing).
  static bool launched_by_mpi();
  // Whether MPI is initialized (by anyone) and not yet finalized; no MPI call otherwise.
  static bool mpi_initialized();

  bool active() const { return world_ != nullptr; }
  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }
  // MPI_COMM_WORLD; throws herd::Error when !active() (single process, no MPI).
  MpiCommunicator& world();

  // Prints "herd: rank R: <message>" (or "herd: <message>" when it starts with "rank ", as
  // CommError's do) on stderr and ends every rank of the job with `code`
  // (MPI_Abort); without MPI ends this process. What rank 0 does when a peer timed out.
  [[noreturn]] static void abort_job(int code, const std::string& message);

  // MPI_Finalize now (idempotent; the destructor calls it too): for a process that ends with
  // _Exit, which runs no destructors (herd serve), or a worker rank whose job is done.
  void finalize();

  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

 private:
  MpiRuntime();
  int world_rank_ = 0, world_size_ = 1;
  bool initialized_here_ = false;
  std::unique_ptr<MpiCommunicator> world_;
};

}  // namespace herd
