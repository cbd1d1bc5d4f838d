// The row-wise and element-wise ops of the CUDA backend against the CPU backend, which is fed
// the same BF16-rounded inputs: embedding, rms_norm, add_rms_norm, swiglu, rope, to_f32,
// gather_rows. Shapes include widths that are not a multiple of 8 (the kernels' scalar path)
// and single rows.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "tests/cuda/cuda_test_util.h"

namespace herd {
namespace {

using test::CudaBackendTest;
using test::view;
using test::random_floats;
using test::round_bf16;

class CudaElementwise : public CudaBackendTest {};

TEST_F(CudaElementwise, EmbeddingOfEveryTableDtype) {
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (int64_t dim : {64, 100, 4096}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " dim " << dim);
      const int64_t vocab = 1000;
      const auto table = random_floats(size_t(vocab * dim), 1, -2.0f, 2.0f);
      const auto host_bytes = test::encode(table, dt);
      const Tensor w = adopt(host_bytes, dt, vocab, dim);
      const std::vector<int32_t> ids = {0, 999, 17, 17, 500, 1, 998};
      const int64_t n = int64_t(ids.size());
      Tensor out = poisoned(n, dim);
      gpu->embedding(w, device_ints(ids), out);

      auto tab = test::decode(host_bytes, dt);
      std::vector<float> want(size_t(n * dim));
      Tensor cpu_table{tab.data(), DType::kF32, vocab, dim}, cpu_out = view(want, n, dim);
      cpu->embedding(cpu_table, ids.data(), cpu_out);
      test::expect_nmse_below(fetch(out), want, test::kRoundingBound);
    }
  }
}

TEST_F(CudaElementwise, RmsNormAndFusedAddNorm) {
  for (DType wdt : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (int64_t rows : {1, 3, 17}) {
      for (int64_t dim : {64, 100, 4096}) {
        SCOPED_TRACE(::testing::Message() << dtype_name(wdt) << " " << rows << "x" << dim);
        const float eps = 1e-5f;
        auto x = round_bf16(random_floats(size_t(rows * dim), 2, -3.0f, 3.0f));
        auto res = round_bf16(random_floats(size_t(rows * dim), 3, -3.0f, 3.0f));
        const auto wbytes = test::encode(random_floats(size_t(dim), 4, 0.5f, 1.5f), wdt);
        auto wf = test::decode(wbytes, wdt);
        const Tensor w = adopt(wbytes, wdt, 1, dim);
        EXPECT_EQ(w.dtype, wdt) << "a norm weight keeps its dtype";

        // rms_norm
        Tensor dx = device(x, rows, dim), out = poisoned(rows, dim);
        gpu->rms_norm(dx, w, eps, out);
        std::vector<float> want(x.size());
        Tensor cx = view(x, rows, dim), cw = view(wf, 1, dim);
        Tensor cout_ = view(want, rows, dim);
        cpu->rms_norm(cx, cw, eps, cout_);
        test::expect_nmse_below(fetch(out), want, test::kRoundingBound);

        // add_rms_norm: the residual is stored as BF16 and the norm is taken of that.
        Tensor dres = device(res, rows, dim), out2 = poisoned(rows, dim);
        gpu->add_rms_norm(dres, dx, w, eps, out2);
        std::vector<float> res_cpu = res, want2(x.size());
        Tensor cres = view(res_cpu, rows, dim), cout2 = view(want2, rows, dim);
        cpu->add_rms_norm(cres, cx, cw, eps, cout2);
        const auto got_res = fetch(dres);
        EXPECT_EQ(got_res, round_bf16(res_cpu)) << "residual + x, rounded once to BF16";
        test::expect_nmse_below(fetch(out2), want2, test::kRoundingBound);
      }
    }
  }
}

TEST_F(CudaElementwise, Swiglu) {
  for (int64_t count : {int64_t(1), int64_t(8), int64_t(1001), int64_t(3 * 14336)}) {
    SCOPED_TRACE(::testing::Message() << count << " elements");
    auto g = round_bf16(random_floats(size_t(count), 5, -8.0f, 8.0f));
    auto u = round_bf16(random_floats(size_t(count), 6, -2.0f, 2.0f));
    Tensor dg = device(g, 1, count), du = device(u, 1, count), out = poisoned(1, count);
    gpu->swiglu(dg, du, out);
    std::vector<float> want(static_cast<size_t>(count));
    Tensor cg = view(g, 1, count), cu = view(u, 1, count);
    Tensor co = view(want, 1, count);
    cpu->swiglu(cg, cu, co);
    test::expect_nmse_below(fetch(out), want, test::kRoundingBound);
  }
}

// Llama 3's unscaled inverse frequencies (theta 500000): the angles of the fastest pair reach
// ~1.3e5 rad at position 131071.
std::vector<float> inv_freq(int head_dim) {
  std::vector<float> f(size_t(head_dim / 2));
  for (int i = 0; i < head_dim / 2; ++i)
    f[size_t(i)] = 1.0f / std::pow(500000.0f, float(2 * i) / float(head_dim));
  return f;
}

TEST_F(CudaElementwise, RopeUpToPosition131071) {
  for (int hd : {64, 128}) {
    for (int heads : {1, 8, 32}) {
      SCOPED_TRACE(::testing::Message() << heads << " heads of " << hd);
      std::vector<int32_t> pos = {0, 1, 2, 15, 16, 4095, 8191, 65536, 131000, 131070, 131071};
      std::mt19937 rng(7);
      for (int i = 0; i < 20; ++i) pos.push_back(int32_t(rng() % 131072));
      const int64_t n = int64_t(pos.size()), width = int64_t(heads) * hd;
      auto x = round_bf16(random_floats(size_t(n * width), 8, -2.0f, 2.0f));
      const auto freq = inv_freq(hd);
      Tensor dx = device(x, n, width);
      gpu->rope(dx, heads, hd, device_ints(pos), device_floats(freq));
      std::vector<float> want = x;
      Tensor cx = view(want, n, width);
      cpu->rope(cx, heads, hd, pos.data(), freq.data());
      const auto got = fetch(dx);
      test::expect_nmse_below(got, want, test::kRoundingBound);
      // Same fp32 angles, same correctly rounded cos/sin, same unfused products: the GPU's
      // value is the CPU's rounded to BF16, bar rare double-rounding ties.
      const auto want_bf16 = round_bf16(want);
      size_t differ = 0;
      for (size_t i = 0; i < got.size(); ++i) differ += got[i] != want_bf16[i];
      EXPECT_LE(differ, got.size() / 1000) << differ << " of " << got.size() << " differ";
    }
  }
}

TEST_F(CudaElementwise, ToF32IsExact) {
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(dtype_name(dt));
    const auto v = random_floats(1003, 9, -100.0f, 100.0f);
    Tensor x = device(v, 17, 59, dt), out = poisoned(17, 59, DType::kF32);
    gpu->to_f32(x, out);
    EXPECT_EQ(fetch(out), test::decode(test::encode(v, dt), dt));
  }
}

TEST_F(CudaElementwise, GatherRowsOfBf16AndF32) {
  for (DType dt : {DType::kBF16, DType::kF32}) {
    for (int64_t cols : {3, 64, 4096}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " cols " << cols);
      const int64_t rows = 40;
      const auto v = test::decode(test::encode(random_floats(size_t(rows * cols), 10), dt), dt);
      const std::vector<int32_t> idx = {39, 0, 7, 7, 20};
      Tensor x = device(v, rows, cols, dt), out = poisoned(int64_t(idx.size()), cols, dt);
      gpu->gather_rows(x, device_ints(idx), out);
      std::vector<float> want;
      for (int32_t r : idx)
        want.insert(want.end(), v.begin() + r * cols, v.begin() + (r + 1) * cols);
      EXPECT_EQ(fetch(out), want);
    }
  }
}

TEST_F(CudaElementwise, RejectsWrongDtypesAndShapes) {
  Tensor f32 = poisoned(2, 64, DType::kF32), bf = poisoned(2, 64), narrow = poisoned(2, 32);
  EXPECT_THROW(gpu->swiglu(f32, bf, bf), Error);
  EXPECT_THROW(gpu->swiglu(bf, narrow, bf), Error);
  EXPECT_THROW(gpu->rope(bf, 2, 31, nullptr, nullptr), Error);
  EXPECT_THROW(gpu->to_f32(bf, narrow), Error);
}

}  // namespace
}  // namespace herd
