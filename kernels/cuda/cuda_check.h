// Error checking for CUDA runtime and cuBLASLt calls: every failure becomes a herd::Error
// naming the call, the source line and the runtime's own message, so a caller at the edge
// (CLI, server) reports it like any other failure instead of the process aborting.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <string>

#include "engine/common/error.h"

namespace herd::cuda {

[[noreturn]] inline void throw_cuda(cudaError_t e, const char* what, const char* file, int line) {
  throw Error(std::string("cuda backend: ") + what + " failed at " + file + ":" +
              std::to_string(line) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) +
              ")");
}

[[noreturn]] inline void throw_cublas(cublasStatus_t s, const char* what, const char* file,
                                      int line) {
  throw Error(std::string("cuda backend: ") + what + " failed at " + file + ":" +
              std::to_string(line) + ": " + cublasLtGetStatusName(s) + " (" +
              cublasLtGetStatusString(s) + ")");
}

}  // namespace herd::cuda

#define HERD_CUDA_CHECK(call)                                                                 \
  do {                                                                                        \
    const cudaError_t herd_e_ = (call);                                                       \
    if (herd_e_ != cudaSuccess) ::herd::cuda::throw_cuda(herd_e_, #call, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: a bad configuration shows up here, a fault in the kernel at the next
// synchronizing call.
#define HERD_CUDA_CHECK_LAUNCH(name)                                                         \
  do {                                                                                       \
    const cudaError_t herd_e_ = cudaGetLastError();                                          \
    if (herd_e_ != cudaSuccess) ::herd::cuda::throw_cuda(herd_e_, name, __FILE__, __LINE__); \
  } while (0)

#define HERD_CUBLAS_CHECK(call)                                       \
  do {                                                                \
    const cublasStatus_t herd_s_ = (call);                            \
    if (herd_s_ != CUBLAS_STATUS_SUCCESS)                             \
      ::herd::cuda::throw_cublas(herd_s_, #call, __FILE__, __LINE__); \
  } while (0)
