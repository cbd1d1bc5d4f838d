// rms_norm, add_rms_norm, swiglu, embedding, to_f32, gather_rows and kv_write against the
// scalar reference (or exact expectations where the op only moves or widens data).
#include <gtest/gtest.h>

#include <cstring>

#include "engine/common/error.h"
#include "kernels/backend.h"
#include "kernels/cpu/reference_ops.h"
#include "tests/kernels/kernel_test_util.h"

namespace herd {
namespace {

using test::make_weights;
using test::random_floats;
using test::view;

class NormTest : public ::testing::TestWithParam<DType> {};

TEST_P(NormTest, RmsNormMatchesReference) {
  auto be = make_cpu_backend(2);
  for (int64_t n : {1, 3, 64}) {
    for (int64_t dim : {1, 7, 16, 17, 2048, 2051}) {
      SCOPED_TRACE(::testing::Message() << "n=" << n << " dim=" << dim);
      auto x = random_floats(size_t(n * dim), uint32_t(n * 7 + dim), -3.0f, 3.0f);
      auto w = make_weights(random_floats(size_t(dim), 5, 0.5f, 1.5f), GetParam());
      std::vector<float> want(x.size()), got(x.size());
      cpu::ref::rms_norm(x.data(), n, dim, w.data(), w.dtype, 1e-5f, want.data());
      test::for_each_simd_target([&] {
        Tensor xt = view(x, n, dim), ot = view(got, n, dim);
        be->rms_norm(xt, view(w.data(), w.dtype, 1, dim), 1e-5f, ot);
        EXPECT_LT(test::max_abs_diff(got, want), 1e-5);
      });
    }
  }
}

TEST_P(NormTest, AddRmsNormUpdatesResidualThenNormalizes) {
  auto be = make_cpu_backend(2);
  for (int64_t dim : {5, 32, 3000}) {
    const int64_t n = 9;
    auto x = random_floats(size_t(n * dim), 1);
    const auto res0 = random_floats(size_t(n * dim), 2, -2.0f, 2.0f);
    auto w = make_weights(random_floats(size_t(dim), 3, 0.5f, 1.5f), GetParam());
    auto want_res = res0;
    std::vector<float> want(x.size()), got(x.size());
    cpu::ref::add_rms_norm(want_res.data(), x.data(), n, dim, w.data(), w.dtype, 1e-6f,
                           want.data());
    test::for_each_simd_target([&] {
      auto res = res0;
      Tensor rt = view(res, n, dim), xt = view(x, n, dim), ot = view(got, n, dim);
      be->add_rms_norm(rt, xt, view(w.data(), w.dtype, 1, dim), 1e-6f, ot);
      EXPECT_EQ(res, want_res);  // a single fp32 add: exact
      EXPECT_LT(test::max_abs_diff(got, want), 1e-5);
    });
  }
}

INSTANTIATE_TEST_SUITE_P(WeightDtypes, NormTest,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kBF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(Swiglu, MatchesReferenceIncludingExtremes) {
  auto be = make_cpu_backend(2);
  for (int64_t count : {1, 15, 16, 17, 100000}) {
    auto g = random_floats(size_t(count), 1, -12.0f, 12.0f);
    auto u = random_floats(size_t(count), 2, -3.0f, 3.0f);
    if (count >= 17) {
      g[0] = -100.0f, g[1] = 100.0f, g[2] = 0.0f, g[3] = -88.5f, g[4] = 89.0f;
    }
    std::vector<float> want(static_cast<size_t>(count)), got(static_cast<size_t>(count));
    cpu::ref::swiglu(g.data(), u.data(), count, want.data());
    test::for_each_simd_target([&] {
      Tensor gt = view(g, 1, count), ut = view(u, 1, count), ot = view(got, 1, count);
      be->swiglu(gt, ut, ot);
      for (int64_t i = 0; i < count; ++i) {
        ASSERT_NEAR(got[size_t(i)], want[size_t(i)], 2e-6 * (1.0 + std::fabs(want[size_t(i)])))
            << "gate " << g[size_t(i)];
      }
    });
  }
}

// Every one of the 65536 bit patterns widens exactly as the scalar conversion does.
TEST(ToF32, ExactForAllHalfAndBf16Values) {
  auto be = make_cpu_backend(2);
  std::vector<uint16_t> bits(65536);
  for (size_t i = 0; i < bits.size(); ++i) bits[i] = uint16_t(i);
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(dtype_name(dtype));
    test::for_each_simd_target([&] {
      std::vector<float> got(bits.size());
      Tensor out = view(got, 256, 256);
      be->to_f32(view(bits.data(), dtype, 256, 256), out);
      for (size_t i = 0; i < bits.size(); ++i) {
        const float want = cpu::ref::load_f32(bits.data(), dtype, int64_t(i));
        if (std::isnan(want)) {
          ASSERT_TRUE(std::isnan(got[i])) << "bits " << i;
        } else {
          ASSERT_EQ(std::memcmp(&got[i], &want, 4), 0) << "bits " << i;
        }
      }
    });
  }
}

TEST(Embedding, CopiesAndWidensTableRows) {
  auto be = make_cpu_backend(2);
  const int64_t vocab = 50, dim = 37;
  auto table = make_weights(random_floats(size_t(vocab * dim), 4), DType::kBF16);
  const std::vector<int32_t> ids = {3, 0, 49, 3, 17};
  std::vector<float> out(ids.size() * size_t(dim));
  Tensor ot = view(out, int64_t(ids.size()), dim);
  const Tensor tt = view(table.data(), table.dtype, vocab, dim);
  be->embedding(tt, ids.data(), ot);
  for (size_t t = 0; t < ids.size(); ++t) {
    for (int64_t d = 0; d < dim; ++d) {
      EXPECT_EQ(out[t * size_t(dim) + size_t(d)],
                bf16_to_f32(table.half[size_t(ids[t] * dim + d)]));
    }
  }
  const std::vector<int32_t> bad = {50};
  Tensor one = view(out.data(), DType::kF32, 1, dim);
  EXPECT_THROW(be->embedding(tt, bad.data(), one), Error);
}

TEST(GatherRows, PicksRowsInOrder) {
  auto be = make_cpu_backend(1);
  auto x = random_floats(6 * 5, 9);
  const std::vector<int32_t> rows = {5, 0, 5};
  std::vector<float> out(3 * 5);
  Tensor xt = view(x, 6, 5), ot = view(out, 3, 5);
  be->gather_rows(xt, rows.data(), ot);
  for (size_t i = 0; i < rows.size(); ++i) {
    for (size_t c = 0; c < 5; ++c) EXPECT_EQ(out[i * 5 + c], x[size_t(rows[i]) * 5 + c]);
  }
  const std::vector<int32_t> bad = {6};
  Tensor one = view(out.data(), DType::kF32, 1, 5);
  EXPECT_THROW(be->gather_rows(xt, bad.data(), one), Error);
}

TEST(KvWrite, StoresRowsAtSlotsAndSkipsNegativeSlots) {
  auto be = make_cpu_backend(1);
  const int kv_heads = 2, head_dim = 4, width = kv_heads * head_dim, slots_total = 32;
  std::vector<float> kc(size_t(slots_total * width), 0.0f), vc = kc;
  KvLayer layer{view(kc, slots_total, width), view(vc, slots_total, width), 16, kv_heads, head_dim};
  auto k = random_floats(3 * width, 1), v = random_floats(3 * width, 2);
  const std::vector<int32_t> slots = {17, -1, 0};
  Tensor kt = view(k, 3, width), vt = view(v, 3, width);
  be->kv_write(kt, vt, slots.data(), layer);
  for (int c = 0; c < width; ++c) {
    EXPECT_EQ(kc[size_t(17 * width + c)], k[size_t(c)]);
    EXPECT_EQ(vc[size_t(17 * width + c)], v[size_t(c)]);
    EXPECT_EQ(kc[size_t(c)], k[size_t(2 * width + c)]);
    EXPECT_EQ(vc[size_t(c)], v[size_t(2 * width + c)]);
  }
  size_t written = 0;
  for (float f : kc) written += f != 0.0f;
  EXPECT_EQ(written, size_t(2 * width));  // the -1 row went nowhere
  const std::vector<int32_t> bad = {32, 0, 0};
  EXPECT_THROW(be->kv_write(kt, vt, bad.data(), layer), Error);
}

}  // namespace
}  // namespace herd
