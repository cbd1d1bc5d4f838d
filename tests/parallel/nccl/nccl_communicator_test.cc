// NcclCommunicator across ranks, one GPU per rank (CUDA builds; runs under mpirun like
// herd_mpi_tests). Without enough GPUs every test skips with the reason (NCCL refuses two
// ranks on one device), so CI without a GPU only proves that it compiles and links.
#include "kernels/cuda/nccl_communicator.h"

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include "engine/parallel/mpi_communicator.h"

namespace herd {
namespace {

#define CK(call) ASSERT_EQ((call), cudaSuccess) << #call

class Nccl : public testing::Test {
 protected:
  void SetUp() override {
    MpiCommunicator& w = MpiRuntime::instance().world();
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess) devices = 0;
    if (devices < w.size())
      GTEST_SKIP() << w.size() << " ranks need as many GPUs; this host has " << devices;
    CK(cudaSetDevice(w.rank()));
    CK(cudaStreamCreate(&stream_));
    comm_ = std::make_unique<NcclCommunicator>(w, stream_);
  }
  void TearDown() override {
    comm_.reset();
    if (stream_) cudaStreamDestroy(stream_);
  }
  template <class T>
  T* device(const std::vector<T>& host) {
    void* p = nullptr;
    EXPECT_EQ(cudaMalloc(&p, host.size() * sizeof(T) + 1), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
              cudaSuccess);
    buffers_.push_back(std::unique_ptr<void, decltype(&cudaFree)>(p, &cudaFree));
    return static_cast<T*>(p);
  }
  template <class T>
  std::vector<T> host(const T* d, size_t n) {
    std::vector<T> out(n);
    EXPECT_EQ(cudaMemcpy(out.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
  }

  cudaStream_t stream_ = nullptr;
  std::unique_ptr<NcclCommunicator> comm_;
  std::vector<std::unique_ptr<void, decltype(&cudaFree)>> buffers_;
};

TEST_F(Nccl, AllReduceF32AndBF16) {
  const int n = comm_->size(), r = comm_->rank();
  std::vector<float> f(1000);
  for (size_t i = 0; i < f.size(); ++i) f[i] = float(r * 1000 + int(i));
  float* df = device(f);
  comm_->all_reduce_sum(df, f.size(), DType::kF32);
  std::vector<float> got = host(df, f.size());
  for (size_t i = 0; i < f.size(); ++i)
    ASSERT_EQ(got[i], float(1000 * n * (n - 1) / 2 + n * int(i))) << i;
  std::vector<uint16_t> b(64);
  for (size_t i = 0; i < b.size(); ++i) b[i] = f32_to_bf16(float((r + 1) << (i % 6)));
  uint16_t* db = device(b);
  comm_->all_reduce_sum(db, b.size(), DType::kBF16);
  std::vector<uint16_t> bg = host(db, b.size());
  for (size_t i = 0; i < b.size(); ++i)
    ASSERT_EQ(bf16_to_f32(bg[i]), float((n * (n + 1) / 2) << (i % 6))) << i;
}

TEST_F(Nccl, AllGatherBroadcastSendRecv) {
  const int n = comm_->size(), r = comm_->rank();
  int32_t* mine = device(std::vector<int32_t>{r * 10, r * 10 + 1});
  int32_t* all = device(std::vector<int32_t>(2 * size_t(n), -1));
  comm_->all_gather(mine, all, 2, DType::kI32);
  std::vector<int32_t> g = host(all, 2 * size_t(n));
  for (int k = 0; k < n; ++k) EXPECT_EQ(g[size_t(2 * k + 1)], k * 10 + 1);

  uint8_t* bc = device(std::vector<uint8_t>(4096, uint8_t(r == 0 ? 7 : 0)));
  comm_->broadcast(bc, 4096, 0);
  EXPECT_EQ(host(bc, 4096), std::vector<uint8_t>(4096, 7));

  if (n >= 2 && r < 2) {
    uint8_t* buf = device(std::vector<uint8_t>(1 << 16, uint8_t(r + 1)));
    if (r == 0) comm_->send(buf, 1 << 16, 1, 3);
    if (r == 1) {
      comm_->recv(buf, 1 << 16, 0, 3);
      EXPECT_EQ(host(buf, 1 << 16), std::vector<uint8_t>(1 << 16, 1));
    }
  }
  comm_->send_bytes(std::vector<uint8_t>{1, 2, 3}, (r + 1) % n, 9);
  EXPECT_EQ(comm_->recv_bytes((r + n - 1) % n, 9), (std::vector<uint8_t>{1, 2, 3}));
  comm_->barrier();
}

TEST_F(Nccl, SplitMakesAnNcclCommPerGroup) {
  const int r = comm_->rank();
  std::unique_ptr<Communicator> sub = comm_->split(r % 2, r);
  int32_t* v = device(std::vector<int32_t>{1});
  sub->all_reduce_sum(v, 1, DType::kI32);
  EXPECT_EQ(host(v, 1)[0], sub->size());
}

}  // namespace
}  // namespace herd
