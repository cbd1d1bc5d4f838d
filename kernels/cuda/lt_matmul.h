// linear() through cuBLASLt: out[n, o] = x[n, k] * w[o, k]^T with BF16 operands and output and
// fp32 accumulation. In cuBLASLt's column-major terms that is out^T (o x n) = w^T * x^T, the
// "TN" layout the tensor-core kernels prefer. The algorithm the heuristic picks is cached per
// (shape, pointer alignment); one workspace is shared by every call (all on one stream).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <tuple>

namespace herd::cuda {

class LtMatmul {
 public:
  LtMatmul();
  ~LtMatmul();
  LtMatmul(const LtMatmul&) = delete;
  LtMatmul& operator=(const LtMatmul&) = delete;

  // All pointers BF16 device memory; x [n, k] and out [n, o] with contiguous rows, w [o, k]
  // with rows ldw >= k elements apart (a column slice of a larger matrix: cuBLASLt's leading
  // dimension).
  void run(const void* x, int64_t n, int64_t k, const void* w, int64_t ldw, int64_t o, void* out,
           cudaStream_t stream);

 private:
  struct Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  // (n, k, o, ldw, alignment of the three pointers and of w's row pitch in bytes).
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, uint32_t>;
  const Plan& plan(const Key& key);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  std::map<Key, Plan> plans_;
};

}  // namespace herd::cuda
