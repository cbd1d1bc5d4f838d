// linear() through cuBLASLt: out[n, o] = x[n, k] * w[o, k]^T with BF16 operands and output and
// fp32 accumulation, or with FP8 (E4M3) operands scaled per output row and per token (run_fp8). In
// cuBLASLt's column-major terms that is out^T (o x n) = w^T * x^T, the "TN" layout the tensor-core
// kernels prefer. The algorithm the heuristic picks is cached per (shape, pointer alignment); one
// workspace is shared by every call (all on one stream).
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

  // Row-wise FP8: out[t, j] = x_scale[t] * w_scale[j] * sum_i xq[t, i] * wq[j, i], accumulated
  // in fp32 (no fast accumulation), written BF16. xq [n, k] and wq [o, k] (rows ldw bytes
  // apart) are E4M3 bytes; x_scale (n) and w_scale (o) fp32 device vectors. cuBLASLt's FP8
  // kernels need k and ldw multiples of 16 and 16-byte aligned operands (herd::Error
  // otherwise). The scales go to cuBLASLt as outer vectors (CUBLASLT_MATMUL_MATRIX_SCALE_
  // OUTER_VEC_32F); when its heuristic has no such kernel for the shape, the product is taken
  // unscaled into an fp32 buffer and scale_outer_to_bf16 applies them (fp8_fallbacks() counts
  // those calls, so a benchmark can say which path it measured).
  void run_fp8(const void* xq, const float* x_scale, int64_t n, int64_t k, const void* wq,
               int64_t ldw, const float* w_scale, int64_t o, void* out, cudaStream_t stream);
  int64_t fp8_fallbacks() const { return fp8_fallbacks_; }

 private:
  // How a plan multiplies: BF16 operands; FP8 with outer-vector scales; FP8 unscaled into an
  // fp32 buffer (the fallback).
  enum class Kind : uint8_t { kBf16, kFp8OuterVec, kFp8Unscaled };
  struct Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    bool found = false;  // false: the heuristic had no algorithm (cached so it is asked once)
  };
  // (kind, n, k, o, ldw, alignment of the pointers and of w's row pitch in bytes).
  using Key = std::tuple<Kind, int64_t, int64_t, int64_t, int64_t, uint32_t>;
  const Plan& plan(const Key& key);
  // The fp32 buffer of the FP8 fallback, grown on demand.
  float* fp8_scratch(size_t floats);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  std::map<Key, Plan> plans_;
  float* fp8_scratch_ = nullptr;
  size_t fp8_scratch_floats_ = 0;
  int64_t fp8_fallbacks_ = 0;
};

}  // namespace herd::cuda
