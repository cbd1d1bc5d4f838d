// Element-wise dtype conversion: to_f32 (logits leaving the backend) and F32/F16 -> BF16 (weight
// matrices at adopt_weight). One grid-stride pass, 8 elements per step where aligned.
#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/vec_io.cuh"

namespace herd::cuda {
namespace {

template <typename S, typename D>
__global__ void convert_kernel(const S* __restrict__ src, int64_t count, D* __restrict__ out,
                               bool vec) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if (vec) {
    const int64_t groups = count / 8;
    for (int64_t g = tid; g < groups; g += stride) {
      float f[8];
      load8(src + g * 8, f);
      store8(out + g * 8, f);
    }
    done = groups * 8;
  }
  for (int64_t i = done + tid; i < count; i += stride) store1(out + i, to_f32(src[i]));
}

template <typename S, typename D>
void launch(const void* src, int64_t count, D* out, cudaStream_t stream) {
  if (count <= 0) return;
  const S* s = static_cast<const S*>(src);
  // F32 sources are read 8 at a time as two float4: 16-byte alignment is enough for each.
  const bool vec = aligned16(s) && aligned16(out);
  constexpr int kThreads = 256;
  // Enough blocks to fill the GPU several times over; the grid-stride loop does the rest.
  const unsigned blocks = std::min<unsigned>(blocks_for((count + 7) / 8, kThreads), 4096u);
  convert_kernel<S, D><<<blocks, kThreads, 0, stream>>>(s, count, out, vec);
  HERD_CUDA_CHECK_LAUNCH("convert kernel");
}

template <typename D>
void dispatch(const void* src, DType dtype, int64_t count, D* out, cudaStream_t stream) {
  switch (dtype) {
    case DType::kF32:
      return launch<float, D>(src, count, out, stream);
    case DType::kF16:
      return launch<__half, D>(src, count, out, stream);
    case DType::kBF16:
      return launch<bf16, D>(src, count, out, stream);
    case DType::kI32:
    case DType::kF8E4M3:
      break;
  }
  throw Error("cuda backend: cannot convert I32 data to a float type");
}

}  // namespace

void convert_to_f32(const void* src, DType dtype, int64_t count, float* out, cudaStream_t stream) {
  dispatch<float>(src, dtype, count, out, stream);
}

void convert_to_bf16(const void* src, DType dtype, int64_t count, void* out, cudaStream_t stream) {
  dispatch<bf16>(src, dtype, count, static_cast<bf16*>(out), stream);
}

}  // namespace herd::cuda
