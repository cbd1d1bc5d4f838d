// Row-wise FP8 on the GPU (the kernels behind linear() with an FP8 weight): the per-token
// activation quantization against a host quantizer built on CUDA's own host-side E4M3
// conversion (bytes and scales must be identical), and LtMatmul::run_fp8 against a double
// reference of the dequantized operands, including a strided (row-parallel shard) weight and
// shapes that take cuBLASLt's outer-vector scaling or the fallback epilogue.
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/lt_matmul.h"
#include "tests/cuda/cuda_test_util.h"

namespace herd {
namespace {

using test::random_floats;
using test::round_bf16;

float e4m3_to_float(uint8_t b) {
  const __half_raw h = __nv_cvt_fp8_to_halfraw(__nv_fp8_storage_t(b), __NV_E4M3);
  return __half2float(__half(h));
}

uint8_t float_to_e4m3(float v) {
  return uint8_t(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
}

// The recipe of fp8_quant.cu, on the host: scale = min(max|x|, ub) / 448, q = e4m3(x / scale)
// (a zero row: scale 0, q 0).
void host_quantize(const std::vector<float>& x, int64_t n, int64_t k, float ub,
                   std::vector<uint8_t>& q, std::vector<float>& scales) {
  q.assign(size_t(n * k), 0);
  scales.assign(size_t(n), 0.0f);
  for (int64_t r = 0; r < n; ++r) {
    float amax = 0.0f;
    for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(x[size_t(r * k + i)]));
    const float s = (ub > 0.0f ? std::min(amax, ub) : amax) / 448.0f;
    scales[size_t(r)] = s;
    for (int64_t i = 0; i < k; ++i)
      q[size_t(r * k + i)] = s > 0.0f ? float_to_e4m3(x[size_t(r * k + i)] / s) : uint8_t(0);
  }
}

class CudaFp8 : public test::CudaBackendTest {
 protected:
  void SetUp() override {
    test::CudaBackendTest::SetUp();
    if (IsSkipped()) return;
    ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  }
  void TearDown() override {
    if (stream != nullptr) cudaStreamDestroy(stream);
    test::CudaBackendTest::TearDown();
  }
  template <typename T>
  std::vector<T> download(const void* p, size_t count) {
    EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    std::vector<T> v(count);
    gpu->download(v.data(), p, count * sizeof(T));
    return v;
  }
  void* upload_bytes(const std::vector<uint8_t>& b) {
    void* p = alloc(b.size());
    gpu->upload(p, b.data(), b.size());
    return p;
  }
  cudaStream_t stream = nullptr;
};

TEST_F(CudaFp8, ActivationQuantizationMatchesTheHostBitForBit) {
  const int64_t n = 6, k = 1000;
  auto x = round_bf16(random_floats(size_t(n * k), 11, -3.0f, 3.0f));
  for (int64_t i = 0; i < k; ++i) x[size_t(1 * k + i)] = 0.0f;  // a row of zeros: scale 0
  x[size_t(2 * k + 17)] = 5000.0f;  // over the 1200 cap: the row saturates at +-448
  x[size_t(3 * k + 999)] = -1e-3f;  // tiny values next to ordinary ones
  const float ub = 1200.0f;
  Tensor dx = device(x, n, k);
  void* q = alloc(size_t(n * k));
  auto* scales = static_cast<float*>(alloc(size_t(n) * sizeof(float)));
  cuda::quantize_rows_e4m3(dx.data, n, k, ub, q, scales, stream);
  const auto got_q = download<uint8_t>(q, size_t(n * k));
  const auto got_s = download<float>(scales, size_t(n));
  std::vector<uint8_t> want_q;
  std::vector<float> want_s;
  host_quantize(x, n, k, ub, want_q, want_s);
  EXPECT_EQ(got_s, want_s);
  EXPECT_EQ(got_q, want_q);
  EXPECT_EQ(got_s[1], 0.0f);
  EXPECT_FLOAT_EQ(got_s[2], 1200.0f / 448.0f);
  EXPECT_EQ(got_q[size_t(2 * k + 17)], 0x7e);  // +448, saturated (0x7f would be NaN)

  // ub = 0: uncapped, the big value sets its row's scale.
  cuda::quantize_rows_e4m3(dx.data, n, k, 0.0f, q, scales, stream);
  const auto uncapped_s = download<float>(scales, size_t(n));
  host_quantize(x, n, k, 0.0f, want_q, want_s);
  EXPECT_EQ(uncapped_s, want_s);
  EXPECT_EQ(download<uint8_t>(q, size_t(n * k)), want_q);
  EXPECT_FLOAT_EQ(uncapped_s[2], 5000.0f / 448.0f);
}

struct Fp8Shape {
  int64_t n, k, o;
};

// out = xs[t] * ws[j] * sum_i e4m3(xq[t, i]) * e4m3(wq[j, i]) in double.
std::vector<double> reference(const std::vector<uint8_t>& xq, const std::vector<float>& xs,
                              const std::vector<uint8_t>& wq, int64_t ldw, int64_t w_begin,
                              const std::vector<float>& ws, const Fp8Shape& s) {
  std::vector<double> out(size_t(s.n * s.o));
  for (int64_t t = 0; t < s.n; ++t)
    for (int64_t j = 0; j < s.o; ++j) {
      double acc = 0;
      for (int64_t i = 0; i < s.k; ++i)
        acc += double(e4m3_to_float(xq[size_t(t * s.k + i)])) *
               double(e4m3_to_float(wq[size_t(j * ldw + w_begin + i)]));
      out[size_t(t * s.o + j)] = acc * xs[size_t(t)] * ws[size_t(j)];
    }
  return out;
}

// Each output within one BF16 rounding (2^-8 relative) plus fp32 accumulation-order noise
// scaled by the largest output.
void expect_close(const std::vector<float>& got, const std::vector<double>& want) {
  double peak = 0;
  for (double v : want) peak = std::max(peak, std::fabs(v));
  size_t bad = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double tol = std::fabs(want[i]) / 256.0 + peak * 1e-4;
    if (!(std::fabs(double(got[i]) - want[i]) <= tol)) {
      if (++bad <= 5) ADD_FAILURE() << "element " << i << ": got " << got[i] << " want " << want[i];
    }
  }
  EXPECT_EQ(bad, 0u);
}

TEST_F(CudaFp8, MatmulMatchesTheDequantizedReference) {
  cuda::LtMatmul lt;
  uint32_t seed = 40;
  for (const Fp8Shape& s : {Fp8Shape{1, 64, 32}, Fp8Shape{7, 128, 48}, Fp8Shape{33, 512, 384},
                            Fp8Shape{128, 1024, 512}, Fp8Shape{300, 256, 1000}}) {
    SCOPED_TRACE(::testing::Message() << "n " << s.n << " k " << s.k << " o " << s.o);
    for (const int64_t w_begin : {int64_t(0), int64_t(16)}) {
      SCOPED_TRACE(::testing::Message() << "weight column " << w_begin);
      const int64_t ldw = w_begin == 0 ? s.k : 2 * s.k + 32;  // a column slice of a wider matrix
      const auto codes = random_floats(size_t(s.o * ldw), seed++, 0.0f, 255.99f);
      std::vector<uint8_t> wq(codes.size());
      for (size_t i = 0; i < wq.size(); ++i) {
        wq[i] = uint8_t(codes[i]);
        if ((wq[i] & 0x7f) == 0x7f) wq[i] ^= 1;  // no NaN codes in a weight
      }
      const auto ws = random_floats(size_t(s.o), seed++, 1e-4f, 1e-2f);
      auto x = round_bf16(random_floats(size_t(s.n * s.k), seed++, -2.0f, 2.0f));
      std::vector<uint8_t> xq;
      std::vector<float> xs;
      host_quantize(x, s.n, s.k, 1200.0f, xq, xs);
      const void* d_wq = static_cast<const uint8_t*>(upload_bytes(wq)) + w_begin;
      const float* d_ws = device_floats(ws);
      const void* d_xq = upload_bytes(xq);
      const float* d_xs = device_floats(xs);
      void* out = alloc(size_t(s.n * s.o) * 2);
      lt.run_fp8(d_xq, d_xs, s.n, s.k, d_wq, ldw, d_ws, s.o, out, stream);
      const auto bits = download<uint16_t>(out, size_t(s.n * s.o));
      std::vector<float> got(bits.size());
      for (size_t i = 0; i < bits.size(); ++i) got[i] = bf16_to_f32(bits[i]);
      expect_close(got, reference(xq, xs, wq, ldw, w_begin, ws, s));
    }
  }
  std::printf("  fp8 calls through the fallback epilogue: %lld\n",
              static_cast<long long>(lt.fp8_fallbacks()));
}

// The backend op the model calls: linear() with an F8E4M3 weight and its row scales, against the
// CPU backend's row-wise FP8 linear fed the same BF16-valued activations (both quantize them
// with the same recipe, so only accumulation order and the BF16 output differ).
TEST_F(CudaFp8, BackendLinearMatchesTheCpuBackend) {
  uint32_t seed = 900;
  for (const Fp8Shape& s : {Fp8Shape{1, 256, 96}, Fp8Shape{9, 512, 128}, Fp8Shape{64, 1024, 384}}) {
    for (const float ub : {1200.0f, 0.5f}) {  // 0.5: every row capped
      SCOPED_TRACE(::testing::Message()
                   << "n " << s.n << " k " << s.k << " o " << s.o << " ub " << ub);
      const auto values = random_floats(size_t(s.o * s.k), seed++, -448.0f, 448.0f);
      std::vector<uint8_t> wq(values.size());
      for (size_t i = 0; i < wq.size(); ++i) wq[i] = float_to_e4m3(values[i]);
      std::vector<float> scale = random_floats(size_t(s.o), seed++, 1e-4f, 1e-3f);
      std::vector<uint8_t> scale_bytes(scale.size() * 4);
      std::memcpy(scale_bytes.data(), scale.data(), scale_bytes.size());
      const Tensor dw = adopt(wq, DType::kF8E4M3, s.o, s.k);
      const Tensor ds = adopt(scale_bytes, DType::kF32, s.o, 1);
      EXPECT_EQ(dw.dtype, DType::kF8E4M3);
      EXPECT_EQ(ds.dtype, DType::kF32);  // a column of scales is not converted to BF16
      auto x = round_bf16(random_floats(size_t(s.n * s.k), seed++, -2.0f, 2.0f));
      Tensor dx = device(x, s.n, s.k), out = poisoned(s.n, s.o);
      gpu->linear(dx, LinearWeight(dw, ds, ub), out);
      std::vector<float> want(size_t(s.n * s.o));
      Tensor cx = test::view(x, s.n, s.k), co = test::view(want, s.n, s.o);
      const Tensor cw{wq.data(), DType::kF8E4M3, s.o, s.k};
      const Tensor cs{scale.data(), DType::kF32, s.o, 1};
      cpu->linear(cx, LinearWeight(cw, cs, ub), co);
      test::expect_nmse_below(fetch(out), want, test::kMatmulBound);
    }
  }
}

TEST_F(CudaFp8, MatmulRefusesShapesCublasLtCannotTake) {
  cuda::LtMatmul lt;
  void* buf = alloc(1 << 16);
  auto* scales = static_cast<float*>(alloc(1024));
  EXPECT_THROW(lt.run_fp8(buf, scales, 4, 24, buf, 24, scales, 8, buf, stream), Error);  // k % 16
  EXPECT_THROW(
      lt.run_fp8(static_cast<char*>(buf) + 8, scales, 4, 32, buf, 32, scales, 8, buf, stream),
      Error);  // 8-byte aligned activations
}

}  // namespace
}  // namespace herd
