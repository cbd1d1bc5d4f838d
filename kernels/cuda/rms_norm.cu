// rms_norm() and the fused residual add + rms_norm: one block per row. Pass 1 reads x (adds it
// into the residual, storing the BF16 sum) and accumulates the sum of squares in fp32; pass 2
// re-reads the row, which each thread wrote itself and which is still in L1/L2, and writes
// out = weight * (v * inv_rms) rounded to BF16. The norm is taken of the BF16-rounded residual,
// the value that is stored and that the next block adds to, as a BF16 PyTorch model does.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/vec_io.cuh"

namespace herd::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float round_bf16(float v) {
  return __bfloat162float(__float2bfloat16_rn(v));
}

template <typename W>
__global__ void __launch_bounds__(kThreads)
    rms_norm_kernel(bf16* __restrict__ residual, const bf16* __restrict__ x, int64_t dim,
                    const W* __restrict__ weight, float eps, bf16* __restrict__ out, bool vec) {
  const int64_t r = blockIdx.x;
  const bf16* xr = x + r * dim;
  bf16* res = residual ? residual + r * dim : nullptr;
  const bf16* src = res ? res : xr;  // what pass 2 normalizes
  bf16* o = out + r * dim;
  const int64_t groups = vec ? dim / 8 : 0;

  float ss = 0.0f;
  for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
    float f[8];
    load8(xr + g * 8, f);
    if (res) {
      float a[8];
      load8(res + g * 8, a);
#pragma unroll
      for (int i = 0; i < 8; ++i) f[i] = round_bf16(a[i] + f[i]);
      store8(res + g * 8, f);
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) ss += f[i] * f[i];
  }
  for (int64_t i = groups * 8 + threadIdx.x; i < dim; i += blockDim.x) {
    float v = __bfloat162float(xr[i]);
    if (res) {
      v = round_bf16(__bfloat162float(res[i]) + v);
      res[i] = __float2bfloat16_rn(v);
    }
    ss += v * v;
  }
  ss = block_sum(ss);
  const float inv = rsqrtf(ss / float(dim) + eps);

  // Same element-to-thread mapping as pass 1: each thread re-reads only what it wrote.
  for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
    float f[8], w[8];
    load8(src + g * 8, f);
    load8(weight + g * 8, w);
#pragma unroll
    for (int i = 0; i < 8; ++i) f[i] = w[i] * (f[i] * inv);
    store8(o + g * 8, f);
  }
  for (int64_t i = groups * 8 + threadIdx.x; i < dim; i += blockDim.x)
    o[i] = __float2bfloat16_rn(to_f32(weight[i]) * (__bfloat162float(src[i]) * inv));
}

template <typename W>
void launch(void* residual, const void* x, int64_t rows, int64_t dim, const void* weight, float eps,
            void* out, cudaStream_t stream) {
  bf16* res = static_cast<bf16*>(residual);
  const bf16* xp = static_cast<const bf16*>(x);
  const W* w = static_cast<const W*>(weight);
  bf16* o = static_cast<bf16*>(out);
  const bool vec = dim % 8 == 0 && aligned16(xp) && aligned16(w) && aligned16(o) &&
                   (res == nullptr || aligned16(res));
  rms_norm_kernel<W><<<unsigned(rows), kThreads, 0, stream>>>(res, xp, dim, w, eps, o, vec);
  HERD_CUDA_CHECK_LAUNCH("rms_norm kernel");
}

}  // namespace

void rms_norm(void* residual, const void* x, int64_t rows, int64_t dim, const void* weight,
              DType weight_dtype, float eps, void* out, cudaStream_t stream) {
  if (rows <= 0) return;
  switch (weight_dtype) {
    case DType::kF32:
      return launch<float>(residual, x, rows, dim, weight, eps, out, stream);
    case DType::kF16:
      return launch<__half>(residual, x, rows, dim, weight, eps, out, stream);
    case DType::kBF16:
      return launch<bf16>(residual, x, rows, dim, weight, eps, out, stream);
    case DType::kI32:
    case DType::kF8E4M3:
      break;
  }
  throw Error("cuda backend rms_norm: the weight must be F32, F16 or BF16");
}

}  // namespace herd::cuda
