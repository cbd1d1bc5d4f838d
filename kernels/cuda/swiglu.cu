// swiglu(): out = silu(gate) * up = gate * up / (1 + exp(-gate)), in fp32, rounded to BF16.
// exp's argument is clamped to +-88 as on the CPU, so it never overflows to inf.
#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/vec_io.cuh"

namespace herd::cuda {
namespace {

__device__ __forceinline__ float silu_mul(float g, float u) {
  return g / (1.0f + expf(fminf(fmaxf(-g, -88.0f), 88.0f))) * u;
}

__global__ void swiglu_kernel(const bf16* __restrict__ gate, const bf16* __restrict__ up,
                              int64_t count, bf16* __restrict__ out, bool vec) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if (vec) {
    const int64_t groups = count / 8;
    for (int64_t g = tid; g < groups; g += stride) {
      float a[8], b[8];
      load8(gate + g * 8, a);
      load8(up + g * 8, b);
#pragma unroll
      for (int i = 0; i < 8; ++i) a[i] = silu_mul(a[i], b[i]);
      store8(out + g * 8, a);
    }
    done = groups * 8;
  }
  for (int64_t i = done + tid; i < count; i += stride)
    out[i] = __float2bfloat16_rn(silu_mul(__bfloat162float(gate[i]), __bfloat162float(up[i])));
}

}  // namespace

void swiglu(const void* gate, const void* up, int64_t count, void* out, cudaStream_t stream) {
  if (count <= 0) return;
  const bf16* g = static_cast<const bf16*>(gate);
  const bf16* u = static_cast<const bf16*>(up);
  bf16* o = static_cast<bf16*>(out);
  const bool vec = aligned16(g) && aligned16(u) && aligned16(o);
  constexpr int kThreads = 256;
  const unsigned blocks = std::min<unsigned>(blocks_for((count + 7) / 8, kThreads), 8192u);
  swiglu_kernel<<<blocks, kThreads, 0, stream>>>(g, u, count, o, vec);
  HERD_CUDA_CHECK_LAUNCH("swiglu kernel");
}

}  // namespace herd::cuda
