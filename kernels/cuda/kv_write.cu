// kv_write(): one block per new token copies its K and V rows (BF16, num_kv_heads * head_dim
// wide) into the paged cache at the token's slot. Padding tokens (slot < 0) are skipped, as on
// the CPU; a slot past the cache is skipped too, because the host cannot check device-side
// slots without a synchronization.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/vec_io.cuh"

namespace herd::cuda {
namespace {

__global__ void kv_write_kernel(const bf16* __restrict__ k, const bf16* __restrict__ v,
                                int64_t width, const int32_t* __restrict__ slots,
                                bf16* __restrict__ kc, bf16* __restrict__ vc, int64_t cache_rows,
                                bool vec) {
  const int64_t t = blockIdx.x;
  const int32_t slot = slots[t];
  if (slot < 0 || slot >= cache_rows) return;
  const bf16* ks = k + t * width;
  const bf16* vs = v + t * width;
  bf16* kd = kc + int64_t(slot) * width;
  bf16* vd = vc + int64_t(slot) * width;
  int64_t done = 0;
  if (vec) {
    const int64_t groups = width / 8;
    for (int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
      reinterpret_cast<uint4*>(kd)[g] = reinterpret_cast<const uint4*>(ks)[g];
      reinterpret_cast<uint4*>(vd)[g] = reinterpret_cast<const uint4*>(vs)[g];
    }
    done = groups * 8;
  }
  for (int64_t i = done + threadIdx.x; i < width; i += blockDim.x) {
    kd[i] = ks[i];
    vd[i] = vs[i];
  }
}

}  // namespace

void kv_write(const void* k, const void* v, int64_t n, int64_t width, const int32_t* slots,
              void* k_cache, void* v_cache, int64_t cache_rows, cudaStream_t stream) {
  if (n <= 0) return;
  const bf16* kp = static_cast<const bf16*>(k);
  const bf16* vp = static_cast<const bf16*>(v);
  bf16* kc = static_cast<bf16*>(k_cache);
  bf16* vc = static_cast<bf16*>(v_cache);
  const bool vec =
      width % 8 == 0 && aligned16(kp) && aligned16(vp) && aligned16(kc) && aligned16(vc);
  kv_write_kernel<<<unsigned(n), 128, 0, stream>>>(kp, vp, width, slots, kc, vc, cache_rows, vec);
  HERD_CUDA_CHECK_LAUNCH("kv_write kernel");
}

}  // namespace herd::cuda
