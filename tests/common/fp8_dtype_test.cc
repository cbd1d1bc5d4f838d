// FP8 E4M3FN conversions against a table built here from the OCP spec (bias 7, 3 mantissa
// bits, exponent 0 subnormal, S.1111.111 NaN, no infinities), not from the code under test.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "engine/common/dtype.h"

namespace herd {
namespace {

// The spec's value of a code.
double spec_value(int code) {
  const int s = code >> 7, e = (code >> 3) & 15, m = code & 7;
  if (e == 15 && m == 7) return std::numeric_limits<double>::quiet_NaN();
  const double mag = e == 0 ? std::ldexp(m / 8.0, 1 - 7) : std::ldexp(1.0 + m / 8.0, e - 7);
  return s ? -mag : mag;
}

// The code round-to-nearest-even picks for v, found by searching the table: the nearest
// finite code of the same sign, ties to the even code (mantissa lsb 0), beyond 448 saturated.
int spec_encode(double v) {
  if (std::isnan(v)) return std::signbit(v) ? 0xff : 0x7f;
  const int sign = std::signbit(v) ? 0x80 : 0;
  const double a = std::fabs(v);
  if (a >= 448.0) return sign | 0x7e;
  int best = 0;
  for (int c = 1; c <= 0x7e; ++c) {
    const double d = std::fabs(spec_value(c) - a), bd = std::fabs(spec_value(best) - a);
    if (d < bd || (d == bd && (c & 1) == 0 && (best & 1) == 1)) best = c;
  }
  return sign | best;
}

TEST(Fp8E4M3, DecodesEveryCodeAsTheSpecSays) {
  for (int c = 0; c < 256; ++c) {
    const float got = f8e4m3_to_f32(uint8_t(c));
    const double want = spec_value(c);
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << c;
    } else {
      EXPECT_EQ(double(got), want) << "code " << c;
      EXPECT_EQ(std::signbit(got), c >= 128) << c;
    }
  }
  EXPECT_EQ(f8e4m3_to_f32(0x7e), 448.0f);
  EXPECT_EQ(f8e4m3_to_f32(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(f8e4m3_to_f32(0x08), std::ldexp(1.0f, -6));
}

TEST(Fp8E4M3, EveryCodeRoundTrips) {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7f) == 0x7f) continue;
    EXPECT_EQ(int(f32_to_f8e4m3(float(spec_value(c)))), c) << c;
  }
  EXPECT_EQ(f32_to_f8e4m3(-0.0f), 0x80);
}

TEST(Fp8E4M3, MidpointsRoundToEvenAndNeighboursToNearest) {
  for (int c = 0; c < 0x7e; ++c) {  // consecutive positive codes c, c + 1
    const double lo = spec_value(c), hi = spec_value(c + 1), mid = (lo + hi) / 2;
    const int even = (c & 1) == 0 ? c : c + 1;
    for (int s : {0, 0x80}) {
      const double sg = s ? -1.0 : 1.0;
      EXPECT_EQ(int(f32_to_f8e4m3(float(sg * mid))), s | even) << "mid of " << c;
      EXPECT_EQ(int(f32_to_f8e4m3(std::nextafter(float(sg * mid), 0.0f))), s | c) << c;
      EXPECT_EQ(int(f32_to_f8e4m3(std::nextafter(float(sg * mid), float(sg) * 1e9f))), s | (c + 1))
          << c;
    }
  }
}

TEST(Fp8E4M3, SaturatesAndKeepsNaN) {
  for (float v : {448.0f, 449.0f, 464.0f, 479.9f, 480.0f, 1e6f, 3e38f,
                  std::numeric_limits<float>::infinity()}) {
    EXPECT_EQ(f32_to_f8e4m3(v), 0x7e) << v;
    EXPECT_EQ(f32_to_f8e4m3(-v), 0xfe) << v;
  }
  EXPECT_TRUE(std::isnan(f8e4m3_to_f32(f32_to_f8e4m3(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(f32_to_f8e4m3(-std::numeric_limits<float>::quiet_NaN()), 0xff);
  // Below half the smallest subnormal: zero; exactly half: ties to even (zero).
  EXPECT_EQ(f32_to_f8e4m3(std::ldexp(1.0f, -11)), 0x00);
  EXPECT_EQ(f32_to_f8e4m3(std::ldexp(1.0f, -10)), 0x00);
  EXPECT_EQ(f32_to_f8e4m3(std::ldexp(1.5f, -10)), 0x01);
}

TEST(Fp8E4M3, RandomValuesMatchTheTableSearch) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> log2mag(-14.0f, 10.0f);
  for (int i = 0; i < 20000; ++i) {
    const float v = std::exp2(log2mag(rng)) * (i % 2 ? -1.0f : 1.0f);
    ASSERT_EQ(int(f32_to_f8e4m3(v)), spec_encode(v)) << v;
  }
}

}  // namespace
}  // namespace herd
