// Shared by the CUDA backend tests: a fixture holding the CUDA backend and the CPU reference
// backend (skipping, with the reason, when no usable GPU is present), device buffers that are
// freed at the end of each test, BF16 round trips, NaN poisoning of outputs (an element the
// kernel forgets to write stays NaN and fails every comparison), and the error metric.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/common/dtype.h"
#include "engine/common/error.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "tests/kernels/kernel_test_util.h"  // random_floats, view, nmse

namespace herd::test {

// The floats a BF16 tensor holding v would hold.
inline std::vector<float> round_bf16(const std::vector<float>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = bf16_to_f32(f32_to_bf16(v[i]));
  return r;
}

// Host bytes of v stored as dtype (F32, F16 or BF16).
inline std::vector<uint8_t> encode(const std::vector<float>& v, DType dtype) {
  std::vector<uint8_t> bytes(v.size() * dtype_size(dtype));
  for (size_t i = 0; i < v.size(); ++i) {
    if (dtype == DType::kF32) {
      std::memcpy(bytes.data() + 4 * i, &v[i], 4);
    } else {
      const uint16_t h = dtype == DType::kBF16 ? f32_to_bf16(v[i]) : f32_to_f16(v[i]);
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    }
  }
  return bytes;
}

inline std::vector<float> decode(const std::vector<uint8_t>& bytes, DType dtype) {
  const size_t n = bytes.size() / dtype_size(dtype);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    if (dtype == DType::kF32) {
      std::memcpy(&v[i], bytes.data() + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, bytes.data() + 2 * i, 2);
      v[i] = dtype == DType::kBF16 ? bf16_to_f32(h) : f16_to_f32(h);
    }
  }
  return v;
}

// Checks nmse(got, want) < bound and prints the value, so a GPU run's log shows how far under
// (or over) its bound each comparison landed.
inline void expect_nmse_below(const std::vector<float>& got, const std::vector<float>& want,
                              double bound) {
  const double e = nmse(got, want);
  std::printf("  nmse %.3g (bound %.0e)\n", e, bound);
  EXPECT_LT(e, bound);
}

// Error bounds by kind of op (normalized MSE against the CPU backend fed the same BF16-rounded
// inputs). Rounding one output to BF16 (relative error up to 2^-9) gives about 1.3e-6;
// the bounds leave room for fp32 accumulation order and, in attention, for P rounded to BF16
// before P V, while a wrong mask, a missed rescale or a bad index costs 1e-3 or more.
constexpr double kRoundingBound = 1e-5;  // one rounding to BF16 on top of fp32 math
constexpr double kMatmulBound = 2e-5;    // plus a BF16 copy of an F32/F16 weight
constexpr double kAttentionBound = 5e-5;

class CudaBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!cuda_device_available(&why)) GTEST_SKIP() << "no GPU to test the CUDA backend on: " << why;
    gpu = make_cuda_backend(0);
    cpu = make_cpu_backend(0);
  }
  void TearDown() override {
    if (!gpu) return;
    gpu->synchronize();
    for (const Tensor& w : weights) gpu->release_weight(w);
    for (void* p : allocations) gpu->deallocate(p);
  }

  void* alloc(size_t bytes) {
    void* p = gpu->allocate(bytes);
    allocations.push_back(p);
    return p;
  }
  // A device tensor holding v in dtype (BF16 by default: the activation dtype).
  Tensor device(const std::vector<float>& v, int64_t rows, int64_t cols,
                DType dtype = DType::kBF16) {
    EXPECT_EQ(int64_t(v.size()), rows * cols);
    const auto bytes = encode(v, dtype);
    Tensor t{alloc(bytes.size()), dtype, rows, cols};
    gpu->upload(t.data, bytes.data(), bytes.size());
    return t;
  }
  // A device tensor of dtype whose every element is NaN.
  Tensor poisoned(int64_t rows, int64_t cols, DType dtype = DType::kBF16) {
    return device(std::vector<float>(size_t(rows * cols), NAN), rows, cols, dtype);
  }
  int32_t* device_ints(const std::vector<int32_t>& v) {
    auto* p = static_cast<int32_t*>(alloc(std::max<size_t>(1, v.size()) * sizeof(int32_t)));
    if (!v.empty()) gpu->upload(p, v.data(), v.size() * sizeof(int32_t));
    return p;
  }
  const float* device_floats(const std::vector<float>& v) {
    auto* p = static_cast<float*>(alloc(v.size() * sizeof(float)));
    gpu->upload(p, v.data(), v.size() * sizeof(float));
    return p;
  }
  // A weight adopted from host memory the test keeps alive; released in TearDown.
  Tensor adopt(const std::vector<uint8_t>& host_bytes, DType dtype, int64_t rows, int64_t cols) {
    const Tensor w =
        gpu->adopt_weight(Tensor{const_cast<uint8_t*>(host_bytes.data()), dtype, rows, cols});
    weights.push_back(w);
    return w;
  }
  std::vector<float> fetch(const Tensor& t) {
    std::vector<uint8_t> bytes(t.bytes());
    gpu->download(bytes.data(), t.data, bytes.size());
    return decode(bytes, t.dtype);
  }

  std::unique_ptr<Backend> gpu, cpu;
  std::vector<void*> allocations;
  std::vector<Tensor> weights;
};

}  // namespace herd::test
