// The CUDA backend's memory operations, its identity, and the device check itself.
#include <gtest/gtest.h>

#include "tests/cuda/cuda_test_util.h"

namespace herd {
namespace {

using test::random_floats;

// Runs everywhere: on a machine without a usable GPU the reason must say so, and asking for
// the backend must fail with an exception, not a crash.
TEST(CudaDevice, AvailabilityAndReasonAgree) {
  std::string why;
  const bool ok = cuda_device_available(&why);
  if (ok) {
    EXPECT_NO_THROW(make_cuda_backend(0));
  } else {
    EXPECT_FALSE(why.empty());
    EXPECT_THROW(make_cuda_backend(0), std::runtime_error);
  }
  EXPECT_EQ(cuda_device_available(nullptr), ok);
}

class CudaMemory : public test::CudaBackendTest {};

TEST_F(CudaMemory, IdentityAndDtypes) {
  EXPECT_EQ(gpu->name(), "cuda");
  EXPECT_EQ(gpu->activation_dtype(), DType::kBF16);
  EXPECT_EQ(gpu->kv_dtype(), DType::kBF16);
}

TEST_F(CudaMemory, UploadDownloadRoundTrip) {
  for (size_t bytes : {size_t(1), size_t(17), size_t(4096), size_t(3) << 20}) {
    std::vector<uint8_t> host(bytes), back(bytes, 0);
    for (size_t i = 0; i < bytes; ++i) host[i] = uint8_t(i * 131 + 7);
    void* d = alloc(bytes);
    gpu->upload(d, host.data(), bytes);
    gpu->download(back.data(), d, bytes);
    EXPECT_EQ(back, host);
  }
  EXPECT_NE(alloc(0), nullptr);  // zero bytes still gives a distinct pointer
}

TEST_F(CudaMemory, AdoptWeightStoresMatricesAsBf16AndKeepsVectors) {
  const auto values = random_floats(96 * 40, 1, -3.0f, 3.0f);
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(dtype_name(dt));
    const auto host = test::encode(values, dt);
    const Tensor m = adopt(host, dt, 96, 40);
    EXPECT_EQ(m.dtype, DType::kBF16);
    EXPECT_EQ(m.rows, 96);
    EXPECT_EQ(m.cols, 40);
    EXPECT_NE(m.data, static_cast<const void*>(host.data()));
    EXPECT_EQ(fetch(m), test::round_bf16(test::decode(host, dt)));

    const Tensor vec = adopt(host, dt, 1, 96 * 40);
    EXPECT_EQ(vec.dtype, dt);
    EXPECT_EQ(fetch(vec), test::decode(host, dt));
  }
}

TEST_F(CudaMemory, AdoptWeightLargerThanOneStagingChunk) {
  // 24M F32 values (96 MiB) cross the 64 MiB staging chunk of the conversion.
  const int64_t rows = 6144, cols = 4096;
  std::vector<float> values(size_t(rows * cols));
  for (size_t i = 0; i < values.size(); ++i) values[i] = float(int64_t(i % 65521) - 32760) / 64.0f;
  const auto host = test::encode(values, DType::kF32);
  const Tensor m = adopt(host, DType::kF32, rows, cols);
  EXPECT_EQ(fetch(m), test::round_bf16(values));
}

}  // namespace
}  // namespace herd
