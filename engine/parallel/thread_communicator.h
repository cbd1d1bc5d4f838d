// A Communicator whose ranks are threads of one process: every collective is a rendezvous on
// shared memory (each rank posts a pointer to its buffer, waits until all ranks have posted,
// reads the others' buffers, and waits again so that no buffer is reused while a peer still
// reads it). It lets tensor- and pipeline-parallel code run in one process — fast tests that
// also work under ASan — with the same semantics as MpiCommunicator: host memory, matched
// point-to-point by (peer, tag) in order, CommError after timeout_ms on every blocking call.
//
// Sums are taken in rank order on every rank, so all ranks get bit-identical results.
// Once a call has timed out the group is broken: every later call on any rank of the group
// throws CommError at once instead of waiting for a rendezvous that can never complete.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/parallel/communicator.h"

namespace herd {

// n communicators of one group, rank i at index i; hand each to its own thread.
std::vector<std::unique_ptr<Communicator>> make_thread_group(int n, int64_t timeout_ms);

}  // namespace herd
