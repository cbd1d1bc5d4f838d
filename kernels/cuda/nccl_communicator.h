// NcclCommunicator: the Communicator on device memory, for GPU ranks (TP all-reduce over
// NVLink, PP activations between nodes). CUDA builds only.
//
// UNVERIFIED ON HARDWARE: written and compiled without a GPU (cuda preset, NCCL 2.28); no
// test has run it yet. Treat the first multi-GPU run as its test.
//
// - Bootstrap: every rank of a host communicator (an MpiCommunicator) constructs one together;
//   rank 0 makes the ncclUniqueId and broadcasts it over that communicator.
// - Data pointers are device pointers; operations are enqueued on the stream given at
//   construction (the backend's), so they are ordered after the kernels that produced the
//   data.
// - Blocking with a deadline, like the host communicator: each call returns when its operation
//   has finished on the stream. The comm is created nonblocking (ncclConfig_t blocking = 0) so
//   that no NCCL call can hang the host; the wait polls ncclCommGetAsyncError and
//   cudaStreamQuery, and at the deadline aborts the comm (ncclCommAbort: the kernels stuck
//   waiting on a dead peer are torn down) and throws CommError. An aborted communicator
//   throws on every later call; the job must end (MpiRuntime::abort_job).
// - Host byte messages (send_bytes / recv_bytes) and barrier go over the host communicator:
//   control messages of unknown size never touch the GPU.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <memory>
#include <string>

#include "engine/parallel/communicator.h"

namespace herd {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over `bootstrap`'s ranks: every rank calls it, with the CUDA device of this
  // rank current. `bootstrap` must outlive this communicator. Deadline: bootstrap.timeout_ms().
  NcclCommunicator(Communicator& bootstrap, cudaStream_t stream);
  // Same, owning its host communicator (the sub-communicators made by split).
  NcclCommunicator(std::unique_ptr<Communicator> bootstrap, cudaStream_t stream);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int64_t timeout_ms() const override { return bootstrap_->timeout_ms(); }

  // F32, F16, BF16 natively (NCCL reduces 16-bit types itself), I32.
  void all_reduce_sum(void* data, size_t count, DType dtype) override;
  void all_gather(const void* send, void* recv, size_t count, DType dtype) override;
  void broadcast(void* data, size_t bytes, int root) override;
  // NCCL has no tags: sends and receives between two ranks match in stream order. `tag`
  // only names the message in errors.
  void send(const void* data, size_t bytes, int peer, int tag) override;
  void recv(void* data, size_t bytes, int peer, int tag) override;
  void send_bytes(const std::vector<uint8_t>& bytes, int peer, int tag) override;
  std::vector<uint8_t> recv_bytes(int peer, int tag, bool wait_forever = false) override;
  bool poll_bytes(int peer, int tag) override;
  void barrier() override;
  // Splits the host communicator and bootstraps a new NCCL comm on it.
  std::unique_ptr<Communicator> split(int color, int key) override;

 private:
  void init();
  // Polls until the comm's pending NCCL call and then (with `stream`) the stream's work are
  // done; at the deadline aborts the comm and throws CommError naming `what`.
  void wait(const std::string& what, bool stream);
  void check(ncclResult_t r, const char* call);
  [[noreturn]] void fail(const std::string& message);

  std::unique_ptr<Communicator> owned_;
  Communicator* bootstrap_;
  cudaStream_t stream_;
  ncclComm_t comm_ = nullptr;
  bool aborted_ = false;
  int rank_ = 0, size_ = 1;
};

}  // namespace herd
