// linear() through cuBLASLt against the CPU backend: decode (1 row), odd row counts, prefill
// sizes, Llama-like widths, and weights given as F32, F16 and BF16 (adopt_weight stores BF16).
#include <gtest/gtest.h>

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
