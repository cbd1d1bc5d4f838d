// linear() through cuBLASLt against the CPU backend: decode (1 row), odd row counts, prefill
// sizes, Llama-like widths, and weights given as F32, F16 and BF16 (adopt_weight stores BF16).
#include <gtest/gtest.h>

#include <stdexcept>

#include "tests/cuda/cuda_test_util.h"

namespace herd {
namespace {

using test::view;
using test::random_floats;
using test::round_bf16;

struct Shape {
  int64_t n, k, o;
};

class CudaLinear : public test::CudaBackendTest {
 protected:
  // Runs the product on both backends (the CPU gets the same BF16 x and the original weights)
  // and checks the nMSE.
  void check(const Shape& s, DType wdt, uint32_t seed) {
    auto x = round_bf16(random_floats(size_t(s.n * s.k), seed, -1.0f, 1.0f));
    const auto wbytes = test::encode(random_floats(size_t(s.o * s.k), seed + 1, -0.1f, 0.1f), wdt);
    const Tensor w = adopt(wbytes, wdt, s.o, s.k);
    EXPECT_EQ(w.dtype, DType::kBF16);
    Tensor dx = device(x, s.n, s.k), out = poisoned(s.n, s.o);
    gpu->linear(dx, w, out);
    auto wf = test::decode(wbytes, wdt);
    std::vector<float> want(size_t(s.n * s.o));
    Tensor cx = view(x, s.n, s.k), cw = view(wf, s.o, s.k);
    Tensor co = view(want, s.n, s.o);
    cpu->linear(cx, cw, co);
    test::expect_nmse_below(fetch(out), want, test::kMatmulBound);
  }
};

TEST_F(CudaLinear, MatchesCpuOverShapesAndWeightDtypes) {
  const Shape shapes[] = {{1, 64, 32},    {1, 4096, 1024},  {2, 256, 96},    {7, 72, 40},
                          {33, 512, 384}, {128, 1024, 512}, {300, 256, 1000}};
  uint32_t seed = 100;
  for (const Shape& s : shapes) {
    for (DType wdt : {DType::kF32, DType::kF16, DType::kBF16}) {
      SCOPED_TRACE(::testing::Message() << "x [" << s.n << ", " << s.k << "] w [" << s.o << ", "
                                        << s.k << "] " << dtype_name(wdt));
      check(s, wdt, seed += 2);
    }
  }
}

// The plan cache keys on the shape: alternating shapes must not reuse each other's plan.
TEST_F(CudaLinear, AlternatingShapesStayCorrect) {
  for (int round = 0; round < 3; ++round) {
    check({1, 512, 256}, DType::kBF16, 200 + round);
    check({64, 512, 256}, DType::kBF16, 300 + round);
    check({64, 256, 512}, DType::kBF16, 400 + round);
  }
}

// A tensor-parallel row-parallel shard: a column slice of a wider device weight, read with
// cuBLASLt's leading dimension = the wide row; the CPU gets the same values contiguous.
// A 4-column offset gives 8-byte-aligned rows (the plan must be chosen for that alignment).
TEST_F(CudaLinear, StridedDeviceWeightMatchesContiguousCpu) {
  uint32_t seed = 500;
  for (const Shape& s : {Shape{1, 512, 256}, Shape{5, 256, 96}, Shape{64, 1024, 128}}) {
    for (const int64_t begin : {int64_t(0), int64_t(8), int64_t(4), s.k}) {
      SCOPED_TRACE(::testing::Message()
                   << "n " << s.n << " k " << s.k << " o " << s.o << " column " << begin);
      const int64_t wide = 2 * s.k + 8;
      auto x = round_bf16(random_floats(size_t(s.n * s.k), seed++, -1.0f, 1.0f));
      const auto values = round_bf16(random_floats(size_t(s.o * wide), seed++, -0.1f, 0.1f));
      const auto wbytes = test::encode(values, DType::kBF16);
      const Tensor w = adopt(wbytes, DType::kBF16, s.o, wide).slice_cols(begin, s.k);
      std::vector<float> sliced;
      for (int64_t r = 0; r < s.o; ++r)
        sliced.insert(sliced.end(), values.begin() + r * wide + begin,
                      values.begin() + r * wide + begin + s.k);
      Tensor dx = device(x, s.n, s.k), out = poisoned(s.n, s.o);
      gpu->linear(dx, w, out);
      std::vector<float> want(size_t(s.n * s.o));
      Tensor cx = view(x, s.n, s.k), cw = view(sliced, s.o, s.k), co = view(want, s.n, s.o);
      cpu->linear(cx, cw, co);
      test::expect_nmse_below(fetch(out), want, test::kMatmulBound);
    }
  }
}

// adopt_weight of a strided host view (a shard of the mmap'd checkpoint) copies just the
// shard into a contiguous device matrix, converting F32 to BF16 on the way.
TEST_F(CudaLinear, AdoptingAStridedHostViewCompactsIt) {
  const int64_t o = 48, wide = 200, begin = 37, k = 100;
  const auto values = random_floats(size_t(o * wide), 9, -1.0f, 1.0f);
  for (DType wdt : {DType::kF32, DType::kBF16}) {
    const auto wbytes = test::encode(values, wdt);
    const Tensor host =
        Tensor{const_cast<uint8_t*>(wbytes.data()), wdt, o, wide}.slice_cols(begin, k);
    const Tensor w = gpu->adopt_weight(host);
    weights.push_back(w);
    EXPECT_TRUE(w.contiguous());
    EXPECT_EQ(w.rows, o);
    EXPECT_EQ(w.cols, k);
    const auto got = fetch(w);
    for (int64_t r = 0; r < o; ++r)
      for (int64_t c = 0; c < k; ++c)
        ASSERT_EQ(got[size_t(r * k + c)], round_bf16({values[size_t(r * wide + begin + c)]})[0])
            << dtype_name(wdt) << " row " << r << " col " << c;
  }
}

TEST_F(CudaLinear, OnlyTheWeightMayBeStrided) {
  const auto wbytes = test::encode(random_floats(64 * 32, 1), DType::kBF16);
  const Tensor w = adopt(wbytes, DType::kBF16, 32, 64);
  Tensor wide_x = poisoned(4, 128), out = poisoned(4, 32);
  EXPECT_THROW(gpu->linear(wide_x.slice_cols(0, 64), w, out), std::invalid_argument);
}

TEST_F(CudaLinear, RejectsMismatchedShapesAndHostWeights) {
  const auto wbytes = test::encode(random_floats(64 * 32, 1), DType::kBF16);
  const Tensor w = adopt(wbytes, DType::kBF16, 32, 64);
  Tensor x = poisoned(4, 64), out = poisoned(4, 32), bad = poisoned(4, 31);
  EXPECT_NO_THROW(gpu->linear(x, w, out));
  EXPECT_THROW(gpu->linear(x, w, bad), Error);
  Tensor f32_w = poisoned(32, 64, DType::kF32);  // not adopted: F32 is not a device weight dtype
  EXPECT_THROW(gpu->linear(x, f32_w, out), Error);
}

}  // namespace
}  // namespace herd
