// The packed AVX-512 BF16 GEMM (kernels/cpu/linear_bf16.h): against the scalar reference on
// bf16-rounded inputs, against the fp32-activation reference within the bf16 rounding bound,
// bitwise batch invariance (a row alone = the same row in any batch, any thread count), strided
// (tensor-parallel) weights, and the backend wiring (prepare_linear, HERD_CPU_MATMUL=fp32).
// Skipped, with a message, on CPUs without AVX-512 BF16.
#include "kernels/cpu/linear_bf16.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/common/error.h"
#include "kernels/backend.h"
#include "kernels/cpu/reference_ops.h"
#include "kernels/cpu/thread_pool.h"
#include "tests/kernels/kernel_test_util.h"

namespace herd {
namespace {

using test::make_weights;
using test::random_floats;

struct Shape {
  int64_t n, k, o;
};

#define SKIP_WITHOUT_BF16()                                                                   \
  if (!cpu::bf16_gemm_supported())                                                            \
  GTEST_SKIP() << "this CPU has no AVX-512 BF16: the packed BF16 GEMM is not used here (the " \
                  "fp32 kernels of linear_test.cc run instead)"

std::vector<float> run_packed(cpu::ThreadPool& pool, const std::vector<float>& x,
                              const cpu::PackedBf16Weight& w, int64_t n) {
  std::vector<float> out(size_t(n * w.rows), -1.0f);
  cpu::linear_bf16_packed(pool, x.data(), n, w, out.data());
  return out;
}

std::vector<float> rounded_to_bf16(std::vector<float> x) {
  for (float& v : x) v = bf16_to_f32(f32_to_bf16(v));
  return x;
}

// Shapes: decode (n = 1..8), tiles with 1..5 leftover rows, odd k (a zero-padded last pair),
// columns that are not a multiple of the 64-column group, several k-blocks (k > 128).
const Shape kShapes[] = {{1, 1, 1},     {1, 7, 5},      {1, 2048, 64}, {2, 33, 9},
                         {3, 100, 130}, {8, 256, 31},   {9, 130, 13},  {13, 1031, 37},
                         {32, 512, 64}, {17, 2049, 70}, {1, 5000, 9},  {128, 300, 200},
                         {7, 129, 65},  {64, 1, 3}};

TEST(LinearBf16, MatchesScalarReferenceOnBf16RoundedInputs) {
  SKIP_WITHOUT_BF16();
  cpu::ThreadPool pool(2);
  uint32_t seed = 1;
  for (const Shape& s : kShapes) {
    SCOPED_TRACE(::testing::Message() << "n=" << s.n << " k=" << s.k << " o=" << s.o);
    const auto x = random_floats(size_t(s.n * s.k), seed++);
    auto w = make_weights(random_floats(size_t(s.o * s.k), seed++), DType::kBF16);
    const auto p = cpu::pack_bf16_weight(pool, w.half.data(), s.o, s.k, s.k);
    EXPECT_EQ(p.bytes(), size_t((s.o + 63) / 64 * 64 * ((s.k + 1) / 2) * 2 * 2));
    std::vector<float> want(size_t(s.n * s.o)), exact(size_t(s.n * s.o));
    // Same inputs as the kernel sees (x rounded to bf16): only fp32 accumulation differs from
    // the double reference, relative error ~ sqrt(k) * 2^-24.
    cpu::ref::linear(rounded_to_bf16(x).data(), s.n, s.k, w.data(), DType::kBF16, s.o, want.data());
    const auto got = run_packed(pool, x, p, s.n);
    EXPECT_LT(test::nmse(got, want), 1e-11);
    // Against fp32 activations: the bf16 rounding of x (relative error <= 2^-9 per element,
    // uniform in sign) gives an nmse near 2^-18 / 3 ~ 1.3e-6; bound 1e-5.
    cpu::ref::linear(x.data(), s.n, s.k, w.data(), DType::kBF16, s.o, exact.data());
    EXPECT_LT(test::nmse(got, exact), 1e-5);
  }
}

TEST(LinearBf16, RowIsBitwiseTheSameAloneOrInAnyBatch) {
  SKIP_WITHOUT_BF16();
  cpu::ThreadPool one(1), two(2);
  const Shape s{128, 700, 150};
  const auto x = random_floats(size_t(s.n * s.k), 21);
  auto w = make_weights(random_floats(size_t(s.o * s.k), 22), DType::kBF16);
  const auto p = cpu::pack_bf16_weight(two, w.half.data(), s.o, s.k, s.k);
  const auto batched = run_packed(two, x, p, s.n);
  EXPECT_EQ(run_packed(one, x, p, s.n), batched);  // threads do not change a bit
  for (int64_t n : {1, 3, 7, 8, 9, 40}) {
    // The last n rows of the batch as a batch of their own, at other tile offsets.
    const std::vector<float> sub(x.end() - n * s.k, x.end());
    const auto got = run_packed(two, sub, p, n);
    const std::vector<float> want(batched.end() - n * s.o, batched.end());
    EXPECT_EQ(got, want) << "batch of " << n;
  }
}

TEST(LinearBf16, StridedWeightPacksLikeItsContiguousCopy) {
  SKIP_WITHOUT_BF16();
  cpu::ThreadPool pool(2);
  // A tensor-parallel column shard: columns [100, 100 + 301) of a [90, 700] matrix.
  const int64_t rows = 90, full = 700, begin = 100, cols = 301;
  auto w = make_weights(random_floats(size_t(rows * full), 31), DType::kBF16);
  std::vector<uint16_t> copy;
  for (int64_t j = 0; j < rows; ++j)
    copy.insert(copy.end(), w.half.begin() + j * full + begin,
                w.half.begin() + j * full + begin + cols);
  const auto strided = cpu::pack_bf16_weight(pool, w.half.data() + begin, rows, cols, full);
  const auto contiguous = cpu::pack_bf16_weight(pool, copy.data(), rows, cols, cols);
  ASSERT_EQ(strided.bytes(), contiguous.bytes());
  EXPECT_EQ(
      std::vector<uint8_t>(strided.data.get(), strided.data.get() + strided.bytes()),
      std::vector<uint8_t>(contiguous.data.get(), contiguous.data.get() + contiguous.bytes()));
}

// Backend wiring: a prepared BF16 weight runs the packed kernel (bf16-rounded activations), an
// unprepared one or HERD_CPU_MATMUL=fp32 the fp32-activation kernel; release drops the copy.
TEST(LinearBf16, BackendUsesThePackedCopyOnlyForPreparedWeights) {
  SKIP_WITHOUT_BF16();
  const Shape s{5, 260, 70};
  auto x = random_floats(size_t(s.n * s.k), 41);
  auto w = make_weights(random_floats(size_t(s.o * s.k), 42), DType::kBF16);
  cpu::ThreadPool pool(2);
  const auto p = cpu::pack_bf16_weight(pool, w.half.data(), s.o, s.k, s.k);
  const auto packed = run_packed(pool, x, p, s.n);
  auto run = [&](Backend& be) {
    std::vector<float> out(size_t(s.n * s.o));
    Tensor xt = test::view(x, s.n, s.k), ot = test::view(out, s.n, s.o);
    be.linear(xt, test::view(w.data(), DType::kBF16, s.o, s.k), ot);
    return out;
  };
  auto be = make_cpu_backend(2);
  const auto unprepared = run(*be);
  EXPECT_NE(unprepared, packed);  // fp32 activations
  const Tensor wt = test::view(w.data(), DType::kBF16, s.o, s.k);
  be->prepare_linear(wt);
  EXPECT_EQ(run(*be), packed);
  // Another view at the same address (fewer rows) is not the prepared one.
  std::vector<float> out(size_t(s.n * 10));
  Tensor xt = test::view(x, s.n, s.k), ot = test::view(out, s.n, 10);
  be->linear(xt, test::view(w.data(), DType::kBF16, 10, s.k), ot);
  std::vector<float> want(size_t(s.n * 10));
  cpu::ref::linear(x.data(), s.n, s.k, w.data(), DType::kBF16, 10, want.data());
  EXPECT_LT(test::nmse(out, want), 1e-11);
  be->release_weight(wt);
  EXPECT_EQ(run(*be), unprepared);

  setenv("HERD_CPU_MATMUL", "fp32", 1);
  auto fp32 = make_cpu_backend(2);
  fp32->prepare_linear(wt);
  EXPECT_EQ(run(*fp32), unprepared);
  setenv("HERD_CPU_MATMUL", "fast", 1);
  EXPECT_THROW(make_cpu_backend(1), std::exception);
  unsetenv("HERD_CPU_MATMUL");
}

// ---- row-wise FP8 on the same kernel ------------------------------------------------------

TEST(LinearBf16, EveryFp8CodeWidensExactly) {
  SKIP_WITHOUT_BF16();
  cpu::ThreadPool pool(2);
  // Row c of x is 448 at column c (its FP8 scale is then exactly 1) and the one weight row
  // holds every code: out[c] = 448 x value(code c), exact in fp32. NaN codes are refused.
  const int64_t k = 256;
  std::vector<uint8_t> codes(k);
  for (int64_t c = 0; c < k; ++c) codes[size_t(c)] = (c & 0x7F) == 0x7F ? 0 : uint8_t(c);
  std::vector<float> x(size_t(k * k), 0.0f);
  for (int64_t c = 0; c < k; ++c) x[size_t(c * k + c)] = 448.0f;
  const auto p = cpu::pack_fp8_weight(pool, codes.data(), 1, k, k);
  EXPECT_EQ(p.bytes(), size_t(64 * (k / 2) * 2));
  const float one = 1.0f;
  std::vector<float> out(static_cast<size_t>(k));
  cpu::linear_fp8_packed(pool, x.data(), k, p, &one, 0.0f, out.data());
  for (int64_t c = 0; c < k; ++c)
    EXPECT_EQ(out[size_t(c)], 448.0f * f8e4m3_to_f32(codes[size_t(c)])) << "code " << c;
  codes[3] = 0xFF;
  EXPECT_THROW(cpu::pack_fp8_weight(pool, codes.data(), 1, k, k), Error);
}

TEST(LinearBf16, Fp8MatchesScalarReferenceAndIsBatchInvariant) {
  SKIP_WITHOUT_BF16();
  cpu::ThreadPool pool(2);
  for (const Shape& s : {Shape{1, 300, 70}, Shape{8, 1031, 130}, Shape{40, 257, 64}}) {
    SCOPED_TRACE(::testing::Message() << "n=" << s.n << " k=" << s.k << " o=" << s.o);
    const auto x = random_floats(size_t(s.n * s.k), 51, -3.0f, 3.0f);
    const auto w = test::make_fp8(s.o, s.k, 52);
    const auto p = cpu::pack_fp8_weight(pool, w.codes.data(), s.o, s.k, s.k);
    std::vector<float> got(size_t(s.n * s.o)), want(size_t(s.n * s.o));
    cpu::linear_fp8_packed(pool, x.data(), s.n, p, w.scale.data(), 1200.0f, got.data());
    cpu::ref::linear_fp8(x.data(), s.n, s.k, w.codes.data(), s.k, w.scale.data(), 1200.0f, s.o,
                         want.data());
    // Same quantized values and exact products; only the fp32 summation order differs.
    EXPECT_LT(test::nmse(got, want), 1e-11);
    // The last row alone: bitwise the same.
    std::vector<float> alone(size_t(s.o));
    cpu::linear_fp8_packed(pool, x.data() + (s.n - 1) * s.k, 1, p, w.scale.data(), 1200.0f,
                           alone.data());
    EXPECT_EQ(alone, std::vector<float>(got.end() - s.o, got.end()));
  }
}

TEST(LinearBf16, BackendRunsPreparedFp8WeightsOnThePackedKernel) {
  SKIP_WITHOUT_BF16();
  const Shape s{6, 200, 90};
  auto x = random_floats(size_t(s.n * s.k), 61);
  auto w = test::make_fp8(s.o, s.k, 62);
  const LinearWeight lw = w.lw(1200.0f);
  cpu::ThreadPool pool(2);
  const auto p = cpu::pack_fp8_weight(pool, w.codes.data(), s.o, s.k, s.k);
  std::vector<float> packed(size_t(s.n * s.o));
  cpu::linear_fp8_packed(pool, x.data(), s.n, p, w.scale.data(), 1200.0f, packed.data());
  auto be = make_cpu_backend(2);
  be->prepare_linear(lw.w);
  std::vector<float> out(size_t(s.n * s.o));
  Tensor xt = test::view(x, s.n, s.k), ot = test::view(out, s.n, s.o);
  be->linear(xt, lw, ot);
  EXPECT_EQ(out, packed);
}

}  // namespace
}  // namespace herd
