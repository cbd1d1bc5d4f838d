// linear(): SIMD kernel vs the scalar reference over weight dtypes, decode and prefill shapes,
// sizes that are not multiples of the vector width, every SIMD target and 1 vs 2 threads.
#include <gtest/gtest.h>

#include <stdexcept>
#include <tuple>

#include "engine/common/error.h"
#include "kernels/backend.h"
#include "kernels/cpu/reference_ops.h"
#include "tests/kernels/kernel_test_util.h"

namespace herd {
namespace {

using test::make_weights;
using test::random_floats;
using test::view;

struct Shape {
  int64_t n, k, o;
};

std::vector<float> run_linear(Backend& be, std::vector<float>& x, test::WeightBuffer& w,
                              const Shape& s) {
  std::vector<float> out(size_t(s.n * s.o), -1.0f);
  Tensor xt = view(x, s.n, s.k), ot = view(out, s.n, s.o);
  be.linear(xt, view(w.data(), w.dtype, s.o, s.k), ot);
  return out;
}

class LinearTest : public ::testing::TestWithParam<DType> {};

TEST_P(LinearTest, MatchesReference) {
  const DType dtype = GetParam();
  // Decode (n <= 8: one row as one stream or 4 rows at a time, k-slices for n > 1) and GEMM
  // (n > 8, k-slices of 128, 6-row micro-tiles) paths; odd k/o/n everywhere.
  const Shape shapes[] = {{1, 1, 1},     {1, 7, 5},     {1, 2048, 64}, {2, 33, 9},   {3, 100, 17},
                          {4, 64, 4},    {5, 1031, 23}, {8, 256, 31},  {9, 130, 13}, {13, 1100, 37},
                          {32, 512, 64}, {17, 2049, 6}, {1, 5000, 9},  {2, 4100, 10}};
  auto be = make_cpu_backend(2);
  uint32_t seed = 1;
  for (const Shape& s : shapes) {
    SCOPED_TRACE(::testing::Message() << "n=" << s.n << " k=" << s.k << " o=" << s.o);
    auto x = random_floats(size_t(s.n * s.k), seed++);
    auto w = make_weights(random_floats(size_t(s.o * s.k), seed++), dtype);
    std::vector<float> want(size_t(s.n * s.o));
    cpu::ref::linear(x.data(), s.n, s.k, w.data(), dtype, s.o, want.data());
    test::for_each_simd_target([&] {
      const auto got = run_linear(*be, x, w, s);
      // fp32 accumulation against a double reference: relative error ~ sqrt(k) * 2^-24.
      EXPECT_LT(test::nmse(got, want), 1e-11);
    });
  }
}

TEST_P(LinearTest, OneAndTwoThreadsGiveIdenticalResults) {
  const DType dtype = GetParam();
  auto one = make_cpu_backend(1), two = make_cpu_backend(2);
  for (const Shape& s : {Shape{1, 300, 77}, Shape{6, 520, 130}, Shape{40, 700, 50}}) {
    auto x = random_floats(size_t(s.n * s.k), 7);
    auto w = make_weights(random_floats(size_t(s.o * s.k), 8), dtype);
    EXPECT_EQ(run_linear(*one, x, w, s), run_linear(*two, x, w, s));
  }
}

TEST_P(LinearTest, RowsAreIndependentOfBatchSize) {
  // Row r of a batched call equals the same row computed alone (decode and prefill paths).
  const DType dtype = GetParam();
  auto be = make_cpu_backend(2);
  const Shape s{12, 600, 33};
  auto x = random_floats(size_t(s.n * s.k), 11);
  auto w = make_weights(random_floats(size_t(s.o * s.k), 12), dtype);
  const auto batched = run_linear(*be, x, w, s);
  for (int64_t r : {0, 5, 11}) {
    std::vector<float> row(x.begin() + r * s.k, x.begin() + (r + 1) * s.k);
    const auto alone = run_linear(*be, row, w, Shape{1, s.k, s.o});
    std::vector<float> want(batched.begin() + r * s.o, batched.begin() + (r + 1) * s.o);
    EXPECT_LT(test::nmse(alone, want), 1e-11) << "row " << r;
  }
}

TEST_P(LinearTest, StridedWeightMatchesContiguousCopy) {
  // A column slice of a wider matrix (a tensor-parallel row-parallel shard read in place from
  // the mmap) gives exactly the result of the same values copied contiguous: same sums in
  // the same order, only the row addresses differ. Decode and GEMM paths, every SIMD target.
  const DType dtype = GetParam();
  auto be = make_cpu_backend(2);
  uint32_t seed = 40;
  for (const Shape& s : {Shape{1, 64, 9}, Shape{3, 100, 17}, Shape{8, 1031, 23}, Shape{13, 300, 37},
                         Shape{1, 5000, 5}}) {
    for (const int64_t begin : {int64_t(0), int64_t(3), s.k}) {
      SCOPED_TRACE(::testing::Message()
                   << "n=" << s.n << " k=" << s.k << " o=" << s.o << " column " << begin);
      const int64_t wide = begin + s.k + 5;
      auto x = random_floats(size_t(s.n * s.k), seed++);
      const auto values = random_floats(size_t(s.o * wide), seed++);
      auto w_wide = make_weights(values, dtype);
      std::vector<float> sliced;
      for (int64_t r = 0; r < s.o; ++r)
        sliced.insert(sliced.end(), values.begin() + r * wide + begin,
                      values.begin() + r * wide + begin + s.k);
      auto w_copy = make_weights(sliced, dtype);
      const Tensor strided = view(w_wide.data(), dtype, s.o, wide).slice_cols(begin, s.k);
      ASSERT_FALSE(strided.contiguous());
      ASSERT_EQ(strided.row_stride(), wide);
      test::for_each_simd_target([&] {
        std::vector<float> got(size_t(s.n * s.o), -1.0f);
        Tensor xt = view(x, s.n, s.k), ot = view(got, s.n, s.o);
        be->linear(xt, strided, ot);
        EXPECT_EQ(got, run_linear(*be, x, w_copy, s));
        // Rows of a strided view keep the stride (fewer rows may take another register
        // tiling: equal up to rounding).
        if (s.o > 2) {
          std::vector<float> part(size_t(s.n * 2)), want;
          Tensor pt = view(part, s.n, 2);
          be->linear(xt, strided.slice_rows(1, 2), pt);
          for (int64_t r = 0; r < s.n; ++r)
            want.insert(want.end(), got.begin() + r * s.o + 1, got.begin() + r * s.o + 3);
          EXPECT_LT(test::nmse(part, want), 1e-11);
        }
      });
    }
  }
}

INSTANTIATE_TEST_SUITE_P(WeightDtypes, LinearTest,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kBF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(Linear, RejectsMismatchedShapes) {
  auto be = make_cpu_backend(1);
  std::vector<float> x(6), w(12), out(8);
  Tensor xt = view(x, 2, 3), wt = view(w, 4, 3), bad_w = view(w, 3, 4), ot = view(out, 2, 4);
  EXPECT_NO_THROW(be->linear(xt, wt, ot));
  EXPECT_THROW(be->linear(xt, bad_w, ot), Error);
  Tensor ints = view(w.data(), DType::kI32, 4, 3);
  EXPECT_THROW(be->linear(xt, ints, ot), Error);
}

TEST(Linear, OnlyTheWeightMayBeStrided) {
  auto be = make_cpu_backend(1);
  std::vector<float> x(12), w(12), out(16), norm(3, 1.0f);
  Tensor x_wide = view(x, 2, 6), wt = view(w, 4, 3), ot = view(out.data(), DType::kF32, 2, 4);
  Tensor x_strided = x_wide.slice_cols(0, 3);
  EXPECT_THROW(be->linear(x_strided, wt, ot), std::invalid_argument);
  Tensor o_strided = view(out, 2, 8).slice_cols(0, 4);
  Tensor xt = view(x.data(), DType::kF32, 2, 3);
  EXPECT_THROW(be->linear(xt, wt, o_strided), std::invalid_argument);
  Tensor n_out = view(out.data(), DType::kF32, 2, 3);
  Tensor n_w = view(norm.data(), DType::kF32, 1, 3);
  EXPECT_THROW(be->rms_norm(x_strided, n_w, 1e-5f, n_out), std::invalid_argument);
  // A row stride shorter than a row is never valid.
  Tensor bad = wt;
  bad.stride = 2;
  EXPECT_THROW(be->linear(xt, bad, ot), Error);
}

}  // namespace
}  // namespace herd
