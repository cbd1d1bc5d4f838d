#include "engine/parallel/mpi_communicator.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace herd {
namespace {

using Clock = std::chrono::steady_clock;

// Sleep between polls: starts at 2 us (a reply that is already on its way costs almost no
// latency) and doubles to 1 ms (a rank waiting on a long computation elsewhere costs ~0 CPU,
// which matters when ranks share cores).
// Waiting for a peer: poll hot (MPI_Test, yielding the core between tests) for the first 2 ms
// — a TP all-reduce or a stage hand-off usually completes within that, and Open MPI's
// nonblocking collectives only advance while some MPI call runs, so a sleep there costs every
// layer its wake-up latency — then sleep, doubling up to 200 us, so a rank that waits for a
// long step (or shares a core with others under --oversubscribe) leaves the core to them.
class Backoff {
 public:
  void pause() {
    if (std::chrono::steady_clock::now() - start_ < std::chrono::milliseconds(2)) {
      std::this_thread::yield();
      return;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(us_));
    us_ = std::min<int64_t>(us_ * 2, 200);
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  int64_t us_ = 5;
};

void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw CommError(std::string(call) + " failed: " + std::string(text, size_t(len)));
}

// MPI counts are int; bigger buffers would need derived datatypes, and no message of herd is
// near 2 GiB (the largest, a prefill chunk's activations, is a few hundred MiB).
int to_count(size_t n, const char* op) {
  if (n > size_t(INT_MAX))
    throw CommError(std::string(op) + ": " + std::to_string(n) +
                    " elements exceed MPI's int count");
  return int(n);
}

MPI_Datatype sum_type(DType t) {
  switch (t) {
    case DType::kF32:
      return MPI_FLOAT;
    case DType::kI32:
      return MPI_INT32_T;
    default:
      return MPI_DATATYPE_NULL;  // 16-bit: summed through an fp32 scratch
  }
}

bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

}  // namespace

// ---- MpiCommunicator ----------------------------------------------------------------------

MpiCommunicator::MpiCommunicator(MPI_Comm comm, bool owned, int64_t timeout_ms)
    : comm_(comm), owned_(owned), timeout_ms_(timeout_ms) {
  check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  check(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_), "MPI_Comm_rank");
}

MpiCommunicator::~MpiCommunicator() {
  // A communicator outliving MPI_Finalize (a static, an exception unwinding past main's
  // runtime) must not call into MPI any more.
  if (!MpiRuntime::mpi_initialized()) return;
  // Queued byte sends (a stop message to the workers) get their deadline to be delivered.
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms_);
  Backoff backoff;
  for (QueuedSend& q : queued_sends_) {
    int done = 0;
    while (MPI_Test(&q.req, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && !done &&
           Clock::now() < deadline)
      backoff.pause();
    if (!done) MPI_Cancel(&q.req), MPI_Request_free(&q.req);
  }
  if (owned_) MPI_Comm_free(&comm_);
}

int MpiCommunicator::world_rank_of(int rank) const {
  if (comm_ == MPI_COMM_WORLD) return rank;
  MPI_Group mine, world;
  int out = rank;
  if (MPI_Comm_group(comm_, &mine) != MPI_SUCCESS) return rank;
  if (MPI_Comm_group(MPI_COMM_WORLD, &world) == MPI_SUCCESS) {
    MPI_Group_translate_ranks(mine, 1, &rank, world, &out);
    MPI_Group_free(&world);
  }
  MPI_Group_free(&mine);
  return out;
}

std::string MpiCommunicator::with_peer(const char* op, int peer, int tag) const {
  return std::string(op) + " with rank " + std::to_string(world_rank_of(peer)) + " (tag " +
         std::to_string(tag) + ")";
}

std::string MpiCommunicator::over_all(const char* op) const {
  // A collective cannot tell which rank is missing: name the group instead.
  return std::string(op) + " over " + std::to_string(size_) + " ranks (some rank never joined)";
}

void MpiCommunicator::wait(MPI_Request& req, MPI_Status* status, const std::string& what,
                           bool is_recv, bool forever) {
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms_);
  Backoff backoff;
  for (;;) {
    int done = 0;
    check(MPI_Test(&req, &done, status ? status : MPI_STATUS_IGNORE), "MPI_Test");
    if (done) return;
    if (!forever && Clock::now() >= deadline) break;
    backoff.pause();
  }
  if (is_recv) {
    // Cancelling a receive completes locally; if the message matched in the meantime the
    // receive finished normally and there is nothing to report.
    MPI_Status st;
    check(MPI_Cancel(&req), "MPI_Cancel");
    check(MPI_Wait(&req, &st), "MPI_Wait");
    int cancelled = 0;
    MPI_Test_cancelled(&st, &cancelled);
    if (!cancelled) {
      if (status) *status = st;
      return;
    }
  }
  throw CommError("rank " + std::to_string(world_rank_) + ": " + what + " got no answer within " +
                  std::to_string(timeout_ms_) + " ms");
}

void MpiCommunicator::all_reduce_sum(void* data, size_t count, DType dtype) {
  if (count == 0) return;
  const int n = to_count(count, "all_reduce_sum");
  MPI_Request req;
  if (MPI_Datatype t = sum_type(dtype); t != MPI_DATATYPE_NULL) {
    check(MPI_Iallreduce(MPI_IN_PLACE, data, n, t, MPI_SUM, comm_, &req), "MPI_Iallreduce");
    wait(req, nullptr, over_all("all_reduce_sum"), false);
    return;
  }
  auto* h = static_cast<uint16_t*>(data);
  const bool bf16 = dtype == DType::kBF16;
  // Owned by a unique_ptr that is released (leaked) on timeout: MPI may still write into it.
  std::unique_ptr<float[]> scratch(new float[count]);
  for (size_t i = 0; i < count; ++i) scratch[i] = bf16 ? bf16_to_f32(h[i]) : f16_to_f32(h[i]);
  check(MPI_Iallreduce(MPI_IN_PLACE, scratch.get(), n, MPI_FLOAT, MPI_SUM, comm_, &req),
        "MPI_Iallreduce");
  try {
    wait(req, nullptr, over_all("all_reduce_sum"), false);
  } catch (const CommError&) {
    (void)scratch.release();
    throw;
  }
  for (size_t i = 0; i < count; ++i) h[i] = bf16 ? f32_to_bf16(scratch[i]) : f32_to_f16(scratch[i]);
}

void MpiCommunicator::all_gather(const void* send, void* recv, size_t count, DType dtype) {
  // A gather moves bits: bytes serve every dtype.
  const int n = to_count(count * dtype_size(dtype), "all_gather");
  MPI_Request req;
  check(MPI_Iallgather(send, n, MPI_BYTE, recv, n, MPI_BYTE, comm_, &req), "MPI_Iallgather");
  wait(req, nullptr, over_all("all_gather"), false);
}

void MpiCommunicator::broadcast(void* data, size_t bytes, int root) {
  const int n = to_count(bytes, "broadcast");
  MPI_Request req;
  check(MPI_Ibcast(data, n, MPI_BYTE, root, comm_, &req), "MPI_Ibcast");
  wait(req, nullptr,
       rank_ == root ? over_all("broadcast")
                     : "broadcast from rank " + std::to_string(world_rank_of(root)),
       false);
}

void MpiCommunicator::send(const void* data, size_t bytes, int peer, int tag) {
  const int n = to_count(bytes, "send");
  MPI_Request req;
  check(MPI_Isend(data, n, MPI_BYTE, peer, tag, comm_, &req), "MPI_Isend");
  wait(req, nullptr, with_peer("send", peer, tag), false);
}

void MpiCommunicator::recv(void* data, size_t bytes, int peer, int tag) {
  const int n = to_count(bytes, "recv");
  MPI_Request req;
  MPI_Status st;
  check(MPI_Irecv(data, n, MPI_BYTE, peer, tag, comm_, &req), "MPI_Irecv");
  wait(req, &st, with_peer("recv", peer, tag), true);
  int got = 0;
  MPI_Get_count(&st, MPI_BYTE, &got);
  // MPI accepts a shorter message into a bigger buffer; a fixed-size exchange that differs
  // is a protocol bug between the ranks.
  if (got != n)
    throw CommError("rank " + std::to_string(world_rank_) + ": " + with_peer("recv", peer, tag) +
                    " expected " + std::to_string(n) + " bytes, got " + std::to_string(got));
}

void MpiCommunicator::send_bytes(const std::vector<uint8_t>& bytes, int peer, int tag) {
  reap_sends();
  const int n = to_count(bytes.size(), "send_bytes");
  queued_sends_.push_back(QueuedSend{MPI_REQUEST_NULL, bytes, Clock::now(), peer, tag});
  QueuedSend& q = queued_sends_.back();
  check(MPI_Isend(q.bytes.data(), n, MPI_BYTE, peer, tag, comm_, &q.req), "MPI_Isend");
}

void MpiCommunicator::reap_sends() {
  while (!queued_sends_.empty()) {
    QueuedSend& q = queued_sends_.front();
    int done = 0;
    check(MPI_Test(&q.req, &done, MPI_STATUS_IGNORE), "MPI_Test");
    if (!done) {
      if (Clock::now() - q.since > std::chrono::milliseconds(timeout_ms_))
        throw CommError("rank " + std::to_string(world_rank_) + ": " +
                        with_peer("send_bytes", q.peer, q.tag) + " not delivered within " +
                        std::to_string(timeout_ms_) + " ms");
      return;  // later ones to the same peer cannot be done before it
    }
    queued_sends_.pop_front();
  }
}

std::vector<uint8_t> MpiCommunicator::recv_bytes(int peer, int tag, bool wait_forever) {
  reap_sends();
  // The size is unknown: probe until the message is there, then receive exactly that message
  // (MPI_Improbe + MPI_Mrecv: no other receive can take it in between).
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms_);
  Backoff backoff;
  MPI_Message msg;
  MPI_Status st;
  for (;;) {
    int found = 0;
    check(MPI_Improbe(peer, tag, comm_, &found, &msg, &st), "MPI_Improbe");
    if (found) break;
    if (!wait_forever && Clock::now() >= deadline)
      throw CommError("rank " + std::to_string(world_rank_) + ": " +
                      with_peer("recv_bytes", peer, tag) + " got no answer within " +
                      std::to_string(timeout_ms_) + " ms");
    backoff.pause();
  }
  int n = 0;
  check(MPI_Get_count(&st, MPI_BYTE, &n), "MPI_Get_count");
  std::vector<uint8_t> out(static_cast<size_t>(n));
  // The message is already here (eager) or its sender is waiting on us (rendezvous): MPI_Mrecv
  // completes without a deadline of its own.
  check(MPI_Mrecv(out.data(), n, MPI_BYTE, &msg, MPI_STATUS_IGNORE), "MPI_Mrecv");
  return out;
}

bool MpiCommunicator::poll_bytes(int peer, int tag) {
  reap_sends();
  int found = 0;
  check(MPI_Iprobe(peer, tag, comm_, &found, MPI_STATUS_IGNORE), "MPI_Iprobe");
  return found != 0;
}

void MpiCommunicator::barrier() {
  MPI_Request req;
  check(MPI_Ibarrier(comm_, &req), "MPI_Ibarrier");
  wait(req, nullptr, over_all("barrier"), false);
}

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key) {
  // A negative color is MPI_UNDEFINED's territory (no communicator at all): not part of the
  // interface, where every rank gets a group.
  if (color < 0)
    throw CommError("rank " + std::to_string(world_rank_) + ": split color " +
                    std::to_string(color) + " must be >= 0");
  MPI_Request req;
  check(MPI_Ibarrier(comm_, &req), "MPI_Ibarrier");
  wait(req, nullptr, over_all("split"), false);
  MPI_Comm sub;
  check(MPI_Comm_split(comm_, color, key, &sub), "MPI_Comm_split");
  return std::make_unique<MpiCommunicator>(sub, true, timeout_ms_);
}

// ---- MpiRuntime ---------------------------------------------------------------------------

bool MpiRuntime::launched_by_mpi() {
  // Open MPI's mpirun, MPICH/Hydra (PMI) and PMIx launchers (srun, prterun).
  return env_set("OMPI_COMM_WORLD_SIZE") || env_set("PMI_SIZE") || env_set("PMIX_RANK");
}

bool MpiRuntime::mpi_initialized() {
  // MPI_Initialized / MPI_Finalized may be called at any time, even before MPI_Init.
  int init = 0, fini = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fini);
  return init && !fini;
}

MpiRuntime& MpiRuntime::instance() {
  // A function-local static: initialized on first use, destroyed (MPI_Finalize) at exit.
  static MpiRuntime runtime;
  return runtime;
}

MpiRuntime::MpiRuntime() {
  if (!launched_by_mpi()) return;
  int already = 0;
  MPI_Initialized(&already);
  if (!already) {
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
    initialized_here_ = true;
    if (provided < MPI_THREAD_SERIALIZED)
      throw Error("the MPI library provides thread level " + std::to_string(provided) +
                  "; herd needs MPI_THREAD_SERIALIZED (" + std::to_string(MPI_THREAD_SERIALIZED) +
                  ")");
  }
  world_ = std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, false);
  world_rank_ = world_->rank();
  world_size_ = world_->size();
}

MpiRuntime::~MpiRuntime() { finalize(); }

void MpiRuntime::finalize() {
  world_.reset();
  if (initialized_here_ && mpi_initialized()) MPI_Finalize();
}

MpiCommunicator& MpiRuntime::world() {
  if (!world_)
    throw Error("MPI is not initialized: this process was not started by mpirun (world size 1)");
  return *world_;
}

void MpiRuntime::abort_job(int code, const std::string& message) {
  int rank = 0;
  const bool mpi = mpi_initialized();
  if (mpi) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  // CommError messages already start with "rank R: "; others get the rank in front.
  if (message.starts_with("rank "))
    std::fprintf(stderr, "herd: %s\n", message.c_str());
  else
    std::fprintf(stderr, "herd: rank %d: %s\n", rank, message.c_str());
  std::fflush(stderr);
  // MPI_Abort makes the launcher kill every rank, including those blocked in a call without
  // a deadline (MPI_Comm_split, a peer's MPI_Mrecv).
  if (mpi) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

}  // namespace herd
