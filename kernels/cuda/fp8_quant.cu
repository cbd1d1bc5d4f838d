// Per-token (row-wise) dynamic FP8 quantization of activations, the paper's §6.2 recipe as
// fbgemm_fp8 checkpoints specify it: scale[r] = min(max|x_r|, ub) / 448 (ub = the checkpoint's
// activation_scale_ub, 1200 by default: a high-perplexity token with a huge activation must not
// make every other value of its row underflow), q = e4m3(x / scale) with round-to-nearest-even
// and saturation to +-448; ub <= 0 means uncapped. A row of zeros gets scale 0 and q = 0 (the
// CPU backend's kernels/cpu/fp8_activation.h defines the same recipe).
// One block per row: a max reduction, then the conversion, both over the BF16 row.
#include <cuda_fp8.h>

#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/vec_io.cuh"

namespace herd::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void quantize_rows_kernel(const bf16* __restrict__ x, int64_t k, float ub,
                                     __nv_fp8_storage_t* __restrict__ q,
                                     float* __restrict__ scales) {
  const bf16* row = x + int64_t(blockIdx.x) * k;
  float amax = 0.0f;
  for (int64_t i = threadIdx.x; i < k; i += blockDim.x) {
    amax = fmaxf(amax, fabsf(__bfloat162float(row[i])));
  }
  // Block max: warp shuffles, then one value per warp through shared memory.
  for (int off = 16; off > 0; off /= 2) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
  __shared__ float warp_max[kThreads / 32];
  __shared__ float row_scale;
  if (threadIdx.x % 32 == 0) warp_max[threadIdx.x / 32] = amax;
  __syncthreads();
  if (threadIdx.x == 0) {
    float m = 0.0f;
    for (int w = 0; w < int(blockDim.x / 32); ++w) m = fmaxf(m, warp_max[w]);
    row_scale = (ub > 0.0f ? fminf(m, ub) : m) / 448.0f;
    scales[blockIdx.x] = row_scale;
  }
  __syncthreads();
  const float s = row_scale;
  __nv_fp8_storage_t* qrow = q + int64_t(blockIdx.x) * k;
  for (int64_t i = threadIdx.x; i < k; i += blockDim.x) {
    // satfinite: values beyond +-448 (a capped row) saturate instead of becoming NaN.
    qrow[i] = s > 0.0f
                  ? __nv_cvt_float_to_fp8(__bfloat162float(row[i]) / s, __NV_SATFINITE, __NV_E4M3)
                  : __nv_fp8_storage_t(0);
  }
}

// out[r, c] = acc[r, c] * row_scale[r] * col_scale[c] as BF16 (the fallback epilogue when
// cuBLASLt has no outer-vector scaling for the shape).
__global__ void scale_outer_kernel(const float* __restrict__ acc, int64_t rows, int64_t cols,
                                   const float* __restrict__ row_scale,
                                   const float* __restrict__ col_scale, bf16* __restrict__ out) {
  const int64_t count = rows * cols;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const int64_t r = i / cols, c = i % cols;
    out[i] = __float2bfloat16_rn(acc[i] * row_scale[r] * col_scale[c]);
  }
}

}  // namespace

void quantize_rows_e4m3(const void* x, int64_t n, int64_t k, float ub, void* q, float* scales,
                        cudaStream_t stream) {
  if (n <= 0) return;
  quantize_rows_kernel<<<unsigned(n), kThreads, 0, stream>>>(
      static_cast<const bf16*>(x), k, ub, static_cast<__nv_fp8_storage_t*>(q), scales);
  HERD_CUDA_CHECK_LAUNCH("fp8 activation quantization kernel");
}

void scale_outer_to_bf16(const float* acc, int64_t rows, int64_t cols, const float* row_scale,
                         const float* col_scale, void* out, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  const unsigned blocks = std::min<unsigned>(blocks_for(rows * cols, 256), 8192u);
  scale_outer_kernel<<<blocks, 256, 0, stream>>>(acc, rows, cols, row_scale, col_scale,
                                                 static_cast<bf16*>(out));
  HERD_CUDA_CHECK_LAUNCH("fp8 output scaling kernel");
}

}  // namespace herd::cuda
