// embedding(): one block per token copies (and narrows to BF16) one row of the table.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/vec_io.cuh"

namespace herd::cuda {
namespace {

template <typename T>
__global__ void embedding_kernel(const T* __restrict__ table, int64_t vocab, int64_t dim,
                                 const int32_t* __restrict__ ids, bf16* __restrict__ out,
                                 bool vec) {
  const int64_t t = blockIdx.x;
  const int32_t id = ids[t];
  bf16* o = out + t * dim;
  // The CPU backend throws on a bad id; here the host cannot see ids without a sync, so a bad
  // id yields a zero row rather than a read outside the table.
  const bool valid = id >= 0 && id < vocab;
  const T* row = table + (valid ? int64_t(id) : 0) * dim;
  int64_t done = 0;
  if (vec) {
    for (int64_t g = threadIdx.x; g < dim / 8; g += blockDim.x) {
      float f[8];
      load8(row + g * 8, f);
      if (!valid)
        for (float& x : f) x = 0.0f;
      store8(o + g * 8, f);
    }
    done = dim / 8 * 8;
  }
  for (int64_t i = done + threadIdx.x; i < dim; i += blockDim.x)
    o[i] = __float2bfloat16_rn(valid ? to_f32(row[i]) : 0.0f);
}

template <typename T>
void launch(const void* table, int64_t vocab, int64_t dim, const int32_t* ids, int64_t n, void* out,
            cudaStream_t stream) {
  const T* tab = static_cast<const T*>(table);
  bf16* o = static_cast<bf16*>(out);
  // Row starts stay 16-byte aligned when dim is a multiple of 8 elements.
  const bool vec = dim % 8 == 0 && aligned16(tab) && aligned16(o);
  embedding_kernel<T><<<unsigned(n), 128, 0, stream>>>(tab, vocab, dim, ids, o, vec);
  HERD_CUDA_CHECK_LAUNCH("embedding kernel");
}

}  // namespace

void embedding(const void* table, DType table_dtype, int64_t vocab, int64_t dim, const int32_t* ids,
               int64_t n, void* out, cudaStream_t stream) {
  if (n <= 0) return;
  switch (table_dtype) {
    case DType::kF32:
      return launch<float>(table, vocab, dim, ids, n, out, stream);
    case DType::kF16:
      return launch<__half>(table, vocab, dim, ids, n, out, stream);
    case DType::kBF16:
      return launch<bf16>(table, vocab, dim, ids, n, out, stream);
    case DType::kI32:
    case DType::kF8E4M3:
      break;
  }
  throw Error("cuda backend embedding: the table must be F32, F16 or BF16");
}

}  // namespace herd::cuda
