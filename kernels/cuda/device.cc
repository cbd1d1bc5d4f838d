// Whether this machine has a GPU the sm_90a kernels can run on. Asked once by the engine (to
// choose a backend) and by every CUDA test (to skip cleanly on a machine without one).
#include <cuda_runtime.h>

#include <string>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_info.h"

namespace herd {

namespace cuda {

bool device_usable(int device, std::string* why) {
  auto fail = [&](const std::string& reason) {
    if (why) *why = reason;
    return false;
  };
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear it so it does not surface at an unrelated later call
    return fail(std::string("no CUDA device: cudaGetDeviceCount returned ") + cudaGetErrorName(e) +
                " (" + cudaGetErrorString(e) + ")");
  }
  if (count == 0) return fail("no CUDA device: cudaGetDeviceCount found 0 devices");
  if (device < 0 || device >= count) {
    return fail("no CUDA device " + std::to_string(device) + ": only " + std::to_string(count) +
                " present");
  }
  cudaDeviceProp p{};
  const cudaError_t pe = cudaGetDeviceProperties(&p, device);
  if (pe != cudaSuccess) {
    cudaGetLastError();
    return fail(std::string("CUDA device ") + std::to_string(device) +
                ": cudaGetDeviceProperties returned " + cudaGetErrorName(pe));
  }
  // The library holds sm_90a machine code only (no PTX), so nothing else can run it.
  if (p.major != 9 || p.minor != 0) {
    return fail(std::string("CUDA device ") + std::to_string(device) + " is " + p.name +
                " (compute capability " + std::to_string(p.major) + "." + std::to_string(p.minor) +
                "); herd's CUDA kernels are built for sm_90a only");
  }
  return true;
}

}  // namespace cuda

bool cuda_device_available(std::string* why) { return cuda::device_usable(0, why); }

}  // namespace herd
