#include "kernels/cuda/nccl_communicator.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

namespace herd {
namespace {

using Clock = std::chrono::steady_clock;

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::kF32:
      return ncclFloat32;
    case DType::kF16:
      return ncclFloat16;
    case DType::kBF16:
      return ncclBfloat16;
    case DType::kI32:
      return ncclInt32;
    case DType::kF8E4M3:  // weights only; activations never travel as FP8
      break;
  }
  return ncclFloat32;
}

}  // namespace

NcclCommunicator::NcclCommunicator(Communicator& bootstrap, cudaStream_t stream)
    : bootstrap_(&bootstrap), stream_(stream) {
  init();
}

NcclCommunicator::NcclCommunicator(std::unique_ptr<Communicator> bootstrap, cudaStream_t stream)
    : owned_(std::move(bootstrap)), bootstrap_(owned_.get()), stream_(stream) {
  init();
}

void NcclCommunicator::init() {
  rank_ = bootstrap_->rank();
  size_ = bootstrap_->size();
  ncclUniqueId id;
  std::memset(&id, 0, sizeof id);
  if (rank_ == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  bootstrap_->broadcast(&id, sizeof id, 0);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // no NCCL call may block the host: every wait below has a deadline
  check(ncclCommInitRankConfig(&comm_, size_, id, rank_, &config), "ncclCommInitRankConfig");
  wait("ncclCommInitRankConfig", false);
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_ == nullptr) return;
  if (!aborted_) {
    // Finalize flushes outstanding work; nonblocking, so poll it (bounded) and abort instead
    // when it does not finish: a destructor must neither hang nor throw.
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms());
    ncclResult_t st = ncclCommFinalize(comm_);
    while (st == ncclSuccess || st == ncclInProgress) {
      if (ncclCommGetAsyncError(comm_, &st) != ncclSuccess) break;
      if (st != ncclInProgress || Clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    if (st == ncclSuccess) {
      ncclCommDestroy(comm_);
      return;
    }
  }
  ncclCommAbort(comm_);
}

void NcclCommunicator::fail(const std::string& message) {
  if (comm_ != nullptr && !aborted_) {
    ncclCommAbort(comm_);
    aborted_ = true;
  }
  throw CommError("rank " + std::to_string(rank_) + ": " + message);
}

void NcclCommunicator::check(ncclResult_t r, const char* call) {
  if (r == ncclSuccess || r == ncclInProgress) return;
  const char* last = comm_ != nullptr ? ncclGetLastError(comm_) : nullptr;
  fail(std::string(call) + " failed: " + ncclGetErrorString(r) +
       (last && *last ? std::string(" (") + last + ")" : std::string()));
}

void NcclCommunicator::wait(const std::string& what, bool stream) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms());
  int64_t sleep_us = 2;  // as MpiCommunicator: fast replies cheap, long waits near-idle
  for (;;) {
    ncclResult_t st = ncclSuccess;
    if (comm_ != nullptr) check(ncclCommGetAsyncError(comm_, &st), "ncclCommGetAsyncError");
    if (st != ncclSuccess && st != ncclInProgress) check(st, what.c_str());
    if (st == ncclSuccess) {
      if (!stream) return;
      const cudaError_t e = cudaStreamQuery(stream_);
      if (e == cudaSuccess) return;
      if (e != cudaErrorNotReady)
        fail(what + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
    }
    if (Clock::now() >= deadline)
      fail(what + " got no answer within " + std::to_string(timeout_ms()) + " ms");
    std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
    sleep_us = std::min<int64_t>(sleep_us * 2, 1000);
  }
}

void NcclCommunicator::all_reduce_sum(void* data, size_t count, DType dtype) {
  if (aborted_) fail("all_reduce_sum on an aborted communicator");
  check(ncclAllReduce(data, data, count, nccl_type(dtype), ncclSum, comm_, stream_),
        "ncclAllReduce");
  wait("all_reduce_sum over " + std::to_string(size_) + " ranks", true);
}

void NcclCommunicator::all_gather(const void* send, void* recv, size_t count, DType dtype) {
  if (aborted_) fail("all_gather on an aborted communicator");
  check(ncclAllGather(send, recv, count, nccl_type(dtype), comm_, stream_), "ncclAllGather");
  wait("all_gather over " + std::to_string(size_) + " ranks", true);
}

void NcclCommunicator::broadcast(void* data, size_t bytes, int root) {
  if (aborted_) fail("broadcast on an aborted communicator");
  check(ncclBroadcast(data, data, bytes, ncclUint8, root, comm_, stream_), "ncclBroadcast");
  wait("broadcast from rank " + std::to_string(root), true);
}

void NcclCommunicator::send(const void* data, size_t bytes, int peer, int tag) {
  if (aborted_) fail("send on an aborted communicator");
  check(ncclSend(data, bytes, ncclUint8, peer, comm_, stream_), "ncclSend");
  wait("send with rank " + std::to_string(peer) + " (tag " + std::to_string(tag) + ")", true);
}

void NcclCommunicator::recv(void* data, size_t bytes, int peer, int tag) {
  if (aborted_) fail("recv on an aborted communicator");
  check(ncclRecv(data, bytes, ncclUint8, peer, comm_, stream_), "ncclRecv");
  wait("recv with rank " + std::to_string(peer) + " (tag " + std::to_string(tag) + ")", true);
}

void NcclCommunicator::send_bytes(const std::vector<uint8_t>& bytes, int peer, int tag) {
  bootstrap_->send_bytes(bytes, peer, tag);
}

bool NcclCommunicator::poll_bytes(int peer, int tag) { return bootstrap_->poll_bytes(peer, tag); }

std::vector<uint8_t> NcclCommunicator::recv_bytes(int peer, int tag, bool wait_forever) {
  return bootstrap_->recv_bytes(peer, tag, wait_forever);
}

void NcclCommunicator::barrier() { bootstrap_->barrier(); }

std::unique_ptr<Communicator> NcclCommunicator::split(int color, int key) {
  return std::make_unique<NcclCommunicator>(bootstrap_->split(color, key), stream_);
}

}  // namespace herd
