// gather_rows(): one block per output row copies x[rows[i]] (any dtype: rows are moved as
// bytes, 16 at a time where aligned). A row index outside x gives a zero row, because the
// host cannot check device-side indices without a synchronization.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/vec_io.cuh"

namespace herd::cuda {
namespace {

__global__ void gather_rows_kernel(const unsigned char* __restrict__ x, int64_t x_rows,
                                   size_t row_bytes, const int32_t* __restrict__ rows,
                                   unsigned char* __restrict__ out, bool vec) {
  const int64_t i = blockIdx.x;
  const int32_t r = rows[i];
  const bool valid = r >= 0 && r < x_rows;
  const unsigned char* src = x + (valid ? size_t(r) : 0) * row_bytes;
  unsigned char* dst = out + size_t(i) * row_bytes;
  size_t done = 0;
  if (vec) {
    const size_t groups = row_bytes / 16;
    for (size_t g = threadIdx.x; g < groups; g += blockDim.x)
      reinterpret_cast<uint4*>(dst)[g] =
          valid ? reinterpret_cast<const uint4*>(src)[g] : make_uint4(0, 0, 0, 0);
    done = groups * 16;
  }
  for (size_t b = done + threadIdx.x; b < row_bytes; b += blockDim.x) dst[b] = valid ? src[b] : 0;
}

}  // namespace

void gather_rows(const void* x, int64_t x_rows, size_t row_bytes, const int32_t* rows, int64_t n,
                 void* out, cudaStream_t stream) {
  if (n <= 0) return;
  const auto* xp = static_cast<const unsigned char*>(x);
  auto* o = static_cast<unsigned char*>(out);
  const bool vec = row_bytes % 16 == 0 && aligned16(xp) && aligned16(o);
  gather_rows_kernel<<<unsigned(n), 128, 0, stream>>>(xp, x_rows, row_bytes, rows, o, vec);
  HERD_CUDA_CHECK_LAUNCH("gather_rows kernel");
}

}  // namespace herd::cuda
