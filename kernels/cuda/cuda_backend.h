// The CUDA Backend (sm_90a: H100/H200). Activations and the KV cache are BF16, every sum is
// accumulated in fp32; weights are copied to the device at adopt_weight (matrices as BF16).
// Compiled in only with -DHERD_CUDA=ON; the engine then defines HERD_HAVE_CUDA.
#pragma once

#include <memory>
#include <string>

#include "kernels/backend.h"

namespace herd {

// True when a CUDA device usable by this build (compute capability 9.0) is present; otherwise
// false with a one-line reason in *why (when why is not null).
bool cuda_device_available(std::string* why);

// The backend on CUDA device `device`. Throws std::runtime_error (herd::Error) with the reason
// when there is no such device or it is not a Hopper GPU.
std::unique_ptr<Backend> make_cuda_backend(int device = 0);

// The CUDA backend's stream (as a cudaStream_t): NCCL collectives of the parallel engine run on
// it, in order with the backend's kernels. Throws herd::Error for another backend.
void* cuda_stream_of(Backend& backend);

}  // namespace herd
