// cuBLASLt plans (descriptor, layouts, heuristic's algorithm) built on first use of a shape.
#include "kernels/cuda/lt_matmul.h"

#include <algorithm>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

namespace herd::cuda {
namespace {

// NVIDIA's recommendation for Hopper: 32 MiB lets cuBLASLt use its split-K and stream-K
// kernels for every shape.
constexpr size_t kWorkspaceBytes = size_t(32) << 20;

// Largest power of two (up to 256) dividing the address: cuBLASLt's heuristic assumes 256-byte
// aligned operands unless told otherwise, and a kernel chosen under that assumption may fault
// on a less aligned slice.
uint32_t alignment(const void* p) {
  const auto v = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && v % a != 0) a /= 2;
  return a;
}

}  // namespace

LtMatmul::LtMatmul() {
  HERD_CUBLAS_CHECK(cublasLtCreate(&handle_));
  workspace_bytes_ = kWorkspaceBytes;
  const cudaError_t e = cudaMalloc(&workspace_, workspace_bytes_);
  if (e != cudaSuccess) {
    cublasLtDestroy(handle_);
    throw_cuda(e, "cudaMalloc of the cuBLASLt workspace", __FILE__, __LINE__);
  }
}

LtMatmul::~LtMatmul() {
  for (auto& [key, p] : plans_) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.op);
  }
  cudaFree(workspace_);
  if (fp8_scratch_ != nullptr) cudaFree(fp8_scratch_);
  cublasLtDestroy(handle_);
}

const LtMatmul::Plan& LtMatmul::plan(const Key& key) {
  if (auto it = plans_.find(key); it != plans_.end()) return it->second;
  const auto [kind, n, k, o, ldw, align] = key;
  const bool fp8 = kind != Kind::kBf16;
  const cudaDataType_t in_type = fp8 ? CUDA_R_8F_E4M3 : CUDA_R_16BF;
  const cudaDataType_t out_type = kind == Kind::kFp8Unscaled ? CUDA_R_32F : CUDA_R_16BF;
  Plan p;
  HERD_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
  HERD_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof(trans_a)));
  HERD_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof(trans_b)));
  if (kind == Kind::kFp8OuterVec) {
    // A = w: one scale per output row (M = o); B = x: one per token (N = n).
    const cublasLtMatmulMatrixScale_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    HERD_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode,
                                                     sizeof(mode)));
    HERD_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode,
                                                     sizeof(mode)));
  }
  // Column-major views of the row-major tensors: w is k x o (ld ldw), x is k x n (ld k), out
  // is o x n (ld o).
  HERD_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, in_type, uint64_t(k), uint64_t(o), ldw));
  HERD_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, in_type, uint64_t(k), uint64_t(n), k));
  HERD_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.c, out_type, uint64_t(o), uint64_t(n), o));

  cublasLtMatmulPreference_t pref = nullptr;
  HERD_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes_, sizeof(workspace_bytes_));
  for (auto attr :
       {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES}) {
    if (st == CUBLAS_STATUS_SUCCESS)
      st = cublasLtMatmulPreferenceSetAttribute(pref, attr, &align, sizeof(align));
  }
  if (st == CUBLAS_STATUS_SUCCESS)
    st =
        cublasLtMatmulAlgoGetHeuristic(handle_, p.op, p.a, p.b, p.c, p.c, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  // "Not supported" is an answer (no kernel for this mode/shape), anything else a failure.
  if (st != CUBLAS_STATUS_SUCCESS && st != CUBLAS_STATUS_NOT_SUPPORTED) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.op);
    throw_cublas(st, "cublasLtMatmulAlgoGetHeuristic", __FILE__, __LINE__);
  }
  p.found = st == CUBLAS_STATUS_SUCCESS && found > 0;
  if (p.found) p.algo = result.algo;
  return plans_.emplace(key, p).first->second;
}

float* LtMatmul::fp8_scratch(size_t floats) {
  if (floats > fp8_scratch_floats_) {
    if (fp8_scratch_ != nullptr) {
      HERD_CUDA_CHECK(cudaDeviceSynchronize());  // queued work may still use the old buffer
      cudaFree(fp8_scratch_);
      fp8_scratch_ = nullptr;
      fp8_scratch_floats_ = 0;
    }
    HERD_CUDA_CHECK(cudaMalloc(&fp8_scratch_, floats * sizeof(float)));
    fp8_scratch_floats_ = floats;
  }
  return fp8_scratch_;
}

void LtMatmul::run(const void* x, int64_t n, int64_t k, const void* w, int64_t ldw, int64_t o,
                   void* out, cudaStream_t stream) {
  if (n <= 0 || o <= 0) return;
  if (k == 0) {  // an empty sum; cuBLASLt rejects zero-sized layouts
    HERD_CUDA_CHECK(cudaMemsetAsync(out, 0, size_t(n * o) * 2, stream));
    return;
  }
  // Every row of w starts at w + j * ldw: the pitch's alignment bounds theirs too.
  const uint32_t align = std::min({alignment(x), alignment(w), alignment(out),
                                   alignment(reinterpret_cast<const void*>(uintptr_t(ldw) * 2))});
  const Plan& p = plan(Key{Kind::kBf16, n, k, o, ldw, align});
  if (!p.found) {
    throw Error("cuda backend linear: cuBLASLt has no BF16 algorithm for x [" + std::to_string(n) +
                ", " + std::to_string(k) + "] * w [" + std::to_string(o) + ", " +
                std::to_string(k) + "]^T at " + std::to_string(align) + "-byte alignment");
  }
  const float alpha = 1.0f, beta = 0.0f;
  HERD_CUBLAS_CHECK(cublasLtMatmul(handle_, p.op, &alpha, w, p.a, x, p.b, &beta, out, p.c, out, p.c,
                                   &p.algo, workspace_, workspace_bytes_, stream));
}

void LtMatmul::run_fp8(const void* xq, const float* x_scale, int64_t n, int64_t k, const void* wq,
                       int64_t ldw, const float* w_scale, int64_t o, void* out,
                       cudaStream_t stream) {
  if (n <= 0 || o <= 0) return;
  if (k % 16 != 0 || ldw % 16 != 0) {
    throw Error("cuda backend fp8 linear: the inner dimension (" + std::to_string(k) +
                ") and the weight row pitch (" + std::to_string(ldw) +
                ") must be multiples of 16 for cuBLASLt's FP8 kernels");
  }
  const uint32_t align = std::min({alignment(xq), alignment(wq), alignment(out)});
  if (align < 16) {
    throw Error("cuda backend fp8 linear: operands must be 16-byte aligned (got " +
                std::to_string(align) + ")");
  }
  const float alpha = 1.0f, beta = 0.0f;
  const Plan& vec = plan(Key{Kind::kFp8OuterVec, n, k, o, ldw, align});
  if (vec.found) {
    HERD_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(vec.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                                     &w_scale, sizeof(w_scale)));
    HERD_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(vec.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                                     &x_scale, sizeof(x_scale)));
    HERD_CUBLAS_CHECK(cublasLtMatmul(handle_, vec.op, &alpha, wq, vec.a, xq, vec.b, &beta, out,
                                     vec.c, out, vec.c, &vec.algo, workspace_, workspace_bytes_,
                                     stream));
    return;
  }
  const Plan& raw = plan(Key{Kind::kFp8Unscaled, n, k, o, ldw, align});
  if (!raw.found) {
    throw Error("cuda backend fp8 linear: cuBLASLt has no FP8 algorithm for x [" +
                std::to_string(n) + ", " + std::to_string(k) + "] * w [" + std::to_string(o) +
                ", " + std::to_string(k) + "]^T");
  }
  float* acc = fp8_scratch(size_t(n * o));
  HERD_CUBLAS_CHECK(cublasLtMatmul(handle_, raw.op, &alpha, wq, raw.a, xq, raw.b, &beta, acc, raw.c,
                                   acc, raw.c, &raw.algo, workspace_, workspace_bytes_, stream));
  // acc is [n, o] row-major (o x n column-major): rows are tokens, columns output features.
  scale_outer_to_bf16(acc, n, o, x_scale, w_scale, out, stream);
  ++fp8_fallbacks_;
}

}  // namespace herd::cuda
