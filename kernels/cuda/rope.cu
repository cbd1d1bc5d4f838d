// rope(): one block per token. The block first evaluates the token's head_dim/2 cos/sin pairs
// into shared memory, with the CPU backend's numerics (cpu::rope_angles): the angle is the
// fp32 product float(position) * inv_freq[j], and cos/sin of it are evaluated in double and
// rounded to fp32, so they are the correctly rounded values even at positions near 131072
// (angles ~1e5 rad, where a fast fp32 sincos loses digits). Then every head of the token is
// rotated with the same table: v[j] = x1*c - x2*s, v[j + half] = x2*c + x1*s, each product
// and sum rounded separately (no FMA contraction) as the CPU computes them, then to BF16.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/vec_io.cuh"

namespace herd::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads)
    rope_kernel(bf16* __restrict__ x, int num_heads, int head_dim,
                const int32_t* __restrict__ positions, const float* __restrict__ inv_freq) {
  extern __shared__ float table[];  // cos[half], then sin[half]
  const int half = head_dim / 2;
  const int64_t t = blockIdx.x;
  const float pos = float(positions[t]);  // exact: positions stay far below 2^24
  for (int j = threadIdx.x; j < half; j += blockDim.x) {
    const float angle = __fmul_rn(pos, inv_freq[j]);
    double s, c;
    sincos(double(angle), &s, &c);
    table[j] = float(c);
    table[half + j] = float(s);
  }
  __syncthreads();
  bf16* row = x + t * int64_t(num_heads) * head_dim;
  for (int i = threadIdx.x; i < num_heads * half; i += blockDim.x) {
    const int h = i / half, j = i % half;
    bf16* v = row + int64_t(h) * head_dim;
    const float x1 = __bfloat162float(v[j]), x2 = __bfloat162float(v[j + half]);
    const float c = table[j], s = table[half + j];
    v[j] = __float2bfloat16_rn(__fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, s)));
    v[j + half] = __float2bfloat16_rn(__fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, s)));
  }
}

}  // namespace

void rope(void* x, int64_t n, int num_heads, int head_dim, const int32_t* positions,
          const float* inv_freq, cudaStream_t stream) {
  if (n <= 0) return;
  const size_t smem = size_t(head_dim) * sizeof(float);
  rope_kernel<<<unsigned(n), kThreads, smem, stream>>>(static_cast<bf16*>(x), num_heads, head_dim,
                                                       positions, inv_freq);
  HERD_CUDA_CHECK_LAUNCH("rope kernel");
}

}  // namespace herd::cuda
