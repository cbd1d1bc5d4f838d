// Communicator: the collective and point-to-point operations the parallel model and executor
// call. The model calls them between backend ops (all-reduce after the attention output and
// down projections, point-to-point activations between pipeline stages); kernels never
// communicate by themselves.
//
// Two implementations share this interface:
//   MpiCommunicator  (engine/parallel/mpi_communicator.*)  host memory; CPU ranks, any host list
//   NcclCommunicator (kernels/cuda, CUDA builds)            device memory on the backend's stream,
//                                                          bootstrapped over MPI
// Control messages of unknown size (step plans, sampled tokens) always travel as host bytes
// (send_bytes / recv_bytes), over MPI even on GPUs.
//
// Failure: every blocking call gives up after timeout_ms() and throws CommError naming the
// operation and the peer, so a hung or dead rank ends the job with one clear message instead
// of a silent hang.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/common/dtype.h"
#include "engine/common/error.h"

namespace herd {

class CommError : public Error {
 public:
  explicit CommError(const std::string& message) : Error(message) {}
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;  // in this communicator
  virtual int size() const = 0;
  virtual int64_t timeout_ms() const = 0;

  // In place: data[i] = sum over ranks of data[i]. dtype F32, F16 or BF16 (16-bit sums are
  // accumulated in fp32 and rounded once).
  virtual void all_reduce_sum(void* data, size_t count, DType dtype) = 0;
  // recv = concat over ranks (in rank order) of each rank's `count` elements of send.
  virtual void all_gather(const void* send, void* recv, size_t count, DType dtype) = 0;
  // Rank `root`'s `bytes` bytes of data to every rank.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  // Fixed-size point-to-point (activations between stages). Matched by (peer, tag) in order.
  virtual void send(const void* data, size_t bytes, int peer, int tag) = 0;
  virtual void recv(void* data, size_t bytes, int peer, int tag) = 0;
  // Host byte messages of any length (plans, results). recv_bytes with wait_forever = true
  // never times out (a worker idling between requests).
  virtual void send_bytes(const std::vector<uint8_t>& bytes, int peer, int tag) = 0;
  virtual std::vector<uint8_t> recv_bytes(int peer, int tag, bool wait_forever = false) = 0;
  // True when a byte message from (peer, tag) is ready for recv_bytes (never blocks): rank 0
  // polls for results while it keeps feeding the pipeline.
  virtual bool poll_bytes(int peer, int tag) = 0;
  virtual void barrier() = 0;

  // A sub-communicator of the ranks passing the same color, ordered by key (like
  // MPI_Comm_split); every rank of this communicator must call it.
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;
};

}  // namespace herd
