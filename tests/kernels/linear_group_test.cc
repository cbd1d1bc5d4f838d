// Backend::linear_group, the fused QKV / gate-up projection: every output is bitwise what a
// separate linear() call gives, on the packed BF16 and FP8 kernels (prepared weights), on the
// fp32-activation kernels (unprepared or F32 weights, HERD_CPU_MATMUL=fp32) and on a mix; an
// empty group or a misfit output throws a clear error.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>
#include <vector>

#include "engine/common/error.h"
#include "kernels/backend.h"
#include "kernels/cpu/linear_bf16.h"
#include "kernels/cpu/thread_pool.h"
#include "tests/kernels/kernel_test_util.h"

namespace herd {
namespace {

using test::make_weights;
using test::random_floats;

// q, k, v of a GQA layer with head_dim 48: k and v end in a ragged 64-column group, and the
// 130-wide input is one full k-block of 64 pairs plus one pair.
constexpr int64_t kIn = 130;
const int64_t kRows[] = {192, 48, 48};

struct Group {
  std::vector<test::WeightBuffer> w;
  std::vector<LinearWeight> lw;
};

Group make_group(DType dtype, uint32_t seed) {
  Group g;
  for (int64_t rows : kRows)
    g.w.push_back(make_weights(random_floats(size_t(rows * kIn), seed++), dtype));
  for (size_t i = 0; i < g.w.size(); ++i)
    g.lw.emplace_back(test::view(g.w[i].data(), dtype, kRows[i], kIn));
  return g;
}

// Outputs of the group op and of one linear() per weight, for n input rows.
struct Outputs {
  std::vector<std::vector<float>> grouped, separate;
};

Outputs run_both(Backend& be, const std::vector<LinearWeight>& lw, int64_t n, uint32_t seed) {
  auto x = random_floats(size_t(n * kIn), seed, -2.0f, 2.0f);
  Tensor xt = test::view(x, n, kIn);
  Outputs o;
  std::vector<Tensor> outs;
  o.grouped.resize(lw.size());
  o.separate.resize(lw.size());
  for (size_t i = 0; i < lw.size(); ++i) {
    o.grouped[i].assign(size_t(n * lw[i].w.rows), -7.0f);
    o.separate[i].assign(size_t(n * lw[i].w.rows), -9.0f);
    outs.push_back(test::view(o.grouped[i], n, lw[i].w.rows));
  }
  be.linear_group(xt, lw.data(), outs.data(), lw.size());
  for (size_t i = 0; i < lw.size(); ++i) {
    Tensor ot = test::view(o.separate[i], n, lw[i].w.rows);
    be.linear(xt, lw[i], ot);
  }
  return o;
}

void expect_bitwise_equal(const Outputs& o) {
  for (size_t i = 0; i < o.grouped.size(); ++i)
    EXPECT_EQ(o.grouped[i], o.separate[i]) << "part " << i;
}

TEST(LinearGroup, BitwiseTheSameAsSeparateLinearsForEveryWeightKind) {
  auto be = make_cpu_backend(2);
  Group bf16 = make_group(DType::kBF16, 1), f32 = make_group(DType::kF32, 11);
  for (const LinearWeight& lw : bf16.lw) be->prepare_linear(lw.w);  // packed where supported
  // F32 weights are never packed: the fp32-activation kernel, one call per weight.
  std::vector<LinearWeight> mixed = {bf16.lw[0], f32.lw[1], bf16.lw[2]};
  for (int64_t n : {1, 8, 13, 70}) {
    SCOPED_TRACE(::testing::Message() << "n=" << n);
    expect_bitwise_equal(run_both(*be, bf16.lw, n, 100 + uint32_t(n)));
    expect_bitwise_equal(run_both(*be, f32.lw, n, 200 + uint32_t(n)));
    expect_bitwise_equal(run_both(*be, mixed, n, 300 + uint32_t(n)));
  }
}

TEST(LinearGroup, Fp8GateUpSharesOneQuantizationAndMatchesSeparateLinears) {
  auto be = make_cpu_backend(2);
  auto gate = test::make_fp8(200, kIn, 21), up = test::make_fp8(200, kIn, 22);
  const std::vector<LinearWeight> lw = {gate.lw(1200.0f), up.lw(1200.0f)};
  for (const LinearWeight& w : lw) be->prepare_linear(w.w);
  for (int64_t n : {1, 6, 9}) expect_bitwise_equal(run_both(*be, lw, n, 400 + uint32_t(n)));
  // Different caps cannot share a quantization: still correct, one quantization per weight.
  const std::vector<LinearWeight> caps = {gate.lw(1200.0f), up.lw(0.0f)};
  expect_bitwise_equal(run_both(*be, caps, 5, 500));
}

TEST(LinearGroup, PackedGroupEqualsTheUnfusedKernelDirectly) {
  if (!cpu::bf16_gemm_supported())
    GTEST_SKIP() << "this CPU has no AVX-512 BF16: the packed group kernel is not used here";
  cpu::ThreadPool pool(2);
  Group g = make_group(DType::kBF16, 31);
  std::vector<cpu::PackedBf16Weight> packed;
  for (size_t i = 0; i < g.w.size(); ++i)
    packed.push_back(cpu::pack_bf16_weight(pool, g.w[i].half.data(), kRows[i], kIn, kIn));
  const int64_t n = 11;
  const auto x = random_floats(size_t(n * kIn), 32);
  std::vector<std::vector<float>> grouped(3), alone(3);
  std::vector<const cpu::PackedBf16Weight*> ws;
  std::vector<float*> outs;
  for (size_t i = 0; i < 3; ++i) {
    grouped[i].resize(size_t(n * kRows[i]));
    alone[i].resize(size_t(n * kRows[i]));
    ws.push_back(&packed[i]);
    outs.push_back(grouped[i].data());
    cpu::linear_bf16_packed(pool, x.data(), n, packed[i], alone[i].data());
  }
  cpu::linear_bf16_packed_group(pool, x.data(), n, ws, outs);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(grouped[i], alone[i]) << "part " << i;
  // A weight with no rows (no output columns) is a no-op, alone or in a group, at any n.
  const auto empty = cpu::pack_bf16_weight(pool, g.w[0].half.data(), 0, kIn, kIn);
  std::vector<float> none;
  cpu::linear_bf16_packed(pool, x.data(), n, empty, none.data());
  ws.push_back(&empty);
  outs.push_back(none.data());
  cpu::linear_bf16_packed_group(pool, x.data(), n, ws, outs);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(grouped[i], alone[i]) << "part " << i;
  ws.pop_back();
  outs.pop_back();
  // Weights of different widths cannot share an input.
  auto other = make_weights(random_floats(64 * 20, 33), DType::kBF16);
  const auto narrow = cpu::pack_bf16_weight(pool, other.half.data(), 64, 20, 20);
  ws[1] = &narrow;
  EXPECT_THROW(cpu::linear_bf16_packed_group(pool, x.data(), n, ws, outs), Error);
}

TEST(LinearGroup, Fp32ModeRunsTheGroupOnTheFp32Kernel) {
  setenv("HERD_CPU_MATMUL", "fp32", 1);
  auto be = make_cpu_backend(2);
  unsetenv("HERD_CPU_MATMUL");
  Group g = make_group(DType::kBF16, 41);
  for (const LinearWeight& lw : g.lw) be->prepare_linear(lw.w);  // a no-op in fp32 mode
  expect_bitwise_equal(run_both(*be, g.lw, 8, 42));
}

TEST(LinearGroup, BadGroupsThrowNamingTheProblem) {
  auto be = make_cpu_backend(1);
  Group g = make_group(DType::kBF16, 51);
  const int64_t n = 4;
  auto x = random_floats(size_t(n * kIn), 52);
  std::vector<float> a(size_t(n * 192)), b(size_t(n * 48));
  Tensor xt = test::view(x, n, kIn);
  auto message = [&](std::vector<LinearWeight> ws, std::vector<Tensor> outs) {
    try {
      be->linear_group(xt, ws.data(), outs.data(), ws.size());
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({}, {}).find("needs at least one weight and output"), std::string::npos);
  // The second output has the wrong width for k (48 rows wanted, 192 given).
  std::vector<float> c(size_t(n * 192));
  const std::string wrong =
      message(g.lw, {test::view(a, n, 192), test::view(c, n, 192), test::view(b, n, 48)});
  EXPECT_NE(wrong.find("linear_group: shapes do not fit"), std::string::npos) << wrong;
}

}  // namespace
}  // namespace herd
