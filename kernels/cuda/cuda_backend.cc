// The CUDA Backend: checks every op's shapes and dtypes on the host (a mismatch is a bug in the
// caller and throws herd::Error naming the op and tensor, as the CPU backend does), then
// enqueues the kernels of cuda_ops.h / cuBLASLt on one stream. Nothing here synchronizes
// except download() and synchronize(), so a forward pass is one uninterrupted stream of work.
// Index arrays (ids, positions, slots, the AttentionBatch arrays) live on the device and are
// not checked here: reading them would need a synchronization (see the kernels for what a bad
// index does).
#include "kernels/cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <string>

#include "engine/common/error.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/device_info.h"
#include "kernels/cuda/lt_matmul.h"
#include "kernels/op_checks.h"

namespace herd {
namespace {

using op_checks::describe;
constexpr op_checks::Checks check("cuda backend", DType::kBF16);

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    std::string why;
    if (!cuda::device_usable(device, &why)) throw Error("cuda backend: " + why);
    HERD_CUDA_CHECK(cudaSetDevice(device));
    HERD_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, device));
    HERD_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    try {
      lt_ = std::make_unique<cuda::LtMatmul>();
    } catch (...) {
      cudaStreamDestroy(stream_);
      throw;
    }
  }

  ~CudaBackend() override {
    // Destructors cannot report: an error here was already sticky and surfaced at an earlier
    // call, or leaves nothing to clean up.
    cudaSetDevice(device_);
    cudaStreamSynchronize(stream_);
    lt_.reset();
    cudaFree(attn_workspace_);
    cudaFree(fp8_scratch_);
    cudaStreamDestroy(stream_);
  }

  std::string name() const override { return "cuda"; }
  cudaStream_t stream() const { return stream_; }
  DType activation_dtype() const override { return DType::kBF16; }
  DType kv_dtype() const override { return DType::kBF16; }

  // ---- memory ---------------------------------------------------------------------------
  void* allocate(size_t bytes) override {
    activate();
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, std::max<size_t>(bytes, 1));
    if (e != cudaSuccess) {
      cudaGetLastError();
      size_t free_bytes = 0, total = 0;
      cudaMemGetInfo(&free_bytes, &total);
      throw Error("cuda backend allocate: cudaMalloc of " + std::to_string(bytes) +
                  " bytes failed (" + cudaGetErrorString(e) + "); " +
                  std::to_string(free_bytes >> 20) + " MiB of " + std::to_string(total >> 20) +
                  " MiB free");
    }
    return p;
  }

  void deallocate(void* p) override {
    if (p == nullptr) return;
    activate();
    // Work still queued may read p: let it finish first. No throw (called from destructors);
    // a failure here is a sticky device error that the next checked call reports.
    cudaStreamSynchronize(stream_);
    cudaFree(p);
  }

  void upload(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0) return;
    activate();
    HERD_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
    // From pageable memory the call returns once src has been staged, so the caller may reuse
    // it; from pinned memory the copy is truly asynchronous, so wait for it.
    cudaPointerAttributes attr{};
    if (cudaPointerGetAttributes(&attr, src) != cudaSuccess) {
      cudaGetLastError();  // not a pointer the runtime knows: plain pageable memory
    } else if (attr.type == cudaMemoryTypeHost) {
      HERD_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }
  }

  void download(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0) return;
    activate();
    HERD_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    HERD_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the caller reads dst next
  }

  void synchronize() override {
    activate();
    HERD_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  Tensor adopt_weight(const Tensor& host) override;
  void release_weight(const Tensor& w) override { deallocate(w.data); }
  // cuBLASLt reads the [out, in] weight as it is (the transposed operand): nothing to pack.
  void prepare_linear(const Tensor&) override {}

  // ---- ops ------------------------------------------------------------------------------
  void embedding(const Tensor& table, const int32_t* ids, Tensor& out) override {
    check.float_weight(table, "embedding", "table");
    check.activation(out, "embedding", "out");
    check(out.cols == table.cols, "embedding",
          "out " + describe(out) + " must have the table's width " + describe(table));
    activate();
    cuda::embedding(table.data, table.dtype, table.rows, table.cols, ids, out.rows, out.data,
                    stream_);
  }

  void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) override {
    check.norm(x, weight, out, "rms_norm");
    activate();
    cuda::rms_norm(nullptr, x.data, x.rows, x.cols, weight.data, weight.dtype, eps, out.data,
                   stream_);
  }

  void add_rms_norm(Tensor& residual, const Tensor& x, const Tensor& weight, float eps,
                    Tensor& out) override {
    check.norm(x, weight, out, "add_rms_norm");
    check.activation(residual, "add_rms_norm", "residual");
    check.same_shape(residual, x, "add_rms_norm", "residual", "x");
    activate();
    cuda::rms_norm(residual.data, x.data, x.rows, x.cols, weight.data, weight.dtype, eps, out.data,
                   stream_);
  }

  // Separate cuBLASLt calls for now (correct, not yet fused: a concatenated device copy of
  // q/k/v and gate/up is the fused form for GPUs; unmeasured until a GPU session).
  void linear_group(const Tensor& x, const LinearWeight* ws, Tensor* outs, size_t count) override {
    check(count > 0 && ws != nullptr && outs != nullptr, "linear_group",
          "needs at least one weight and output");
    for (size_t i = 0; i < count; ++i) linear(x, ws[i], outs[i]);
  }

  void linear(const Tensor& x, const LinearWeight& lw, Tensor& out) override {
    const Tensor& w = lw.w;
    check.activation(x, "linear", "x");
    check.activation(out, "linear", "out");
    check((w.dtype == DType::kBF16 || w.dtype == DType::kF8E4M3) && w.data != nullptr, "linear",
          "w must be a BF16 or F8E4M3 device weight from adopt_weight(), got " + describe(w));
    check(w.row_stride() >= w.cols, "linear",
          "w row stride " + std::to_string(w.row_stride()) + " is shorter than its rows " +
              describe(w));
    check(x.cols == w.cols && out.rows == x.rows && out.cols == w.rows, "linear",
          "shapes do not fit: x " + describe(x) + " * w " + describe(w) + "^T -> out " +
              describe(out));
    activate();
    if (!lw.fp8()) {
      check(lw.row_scale.data == nullptr, "linear", "row scales come only with an F8E4M3 weight");
      lt_->run(x.data, x.rows, x.cols, w.data, w.row_stride(), w.rows, out.data, stream_);
      return;
    }
    check(
        lw.row_scale.data != nullptr && lw.row_scale.dtype == DType::kF32 &&
            lw.row_scale.numel() == w.rows,
        "linear",
        "an F8E4M3 weight needs F32 row scales, one per output row, got " + describe(lw.row_scale));
    // Per-token activation quantization into the FP8 scratch, then cuBLASLt's FP8 GEMM.
    const size_t q_bytes = size_t(x.rows * x.cols), s_bytes = size_t(x.rows) * sizeof(float);
    const size_t need = (q_bytes + 255) / 256 * 256 + s_bytes;
    if (need > fp8_scratch_bytes_) {
      deallocate(fp8_scratch_);  // synchronizes first: queued work may still read it
      fp8_scratch_ = nullptr;
      fp8_scratch_bytes_ = 0;
      fp8_scratch_ = allocate(need);
      fp8_scratch_bytes_ = need;
    }
    void* xq = fp8_scratch_;
    auto* x_scale =
        reinterpret_cast<float*>(static_cast<char*>(fp8_scratch_) + (q_bytes + 255) / 256 * 256);
    cuda::quantize_rows_e4m3(x.data, x.rows, x.cols, lw.act_scale_ub, xq, x_scale, stream_);
    lt_->run_fp8(xq, x_scale, x.rows, x.cols, w.data, w.row_stride(), lw.row_scale.as<float>(),
                 w.rows, out.data, stream_);
  }

  void rope(Tensor& x, int num_heads, int head_dim, const int32_t* positions,
            const float* inv_freq) override {
    check.activation(x, "rope", "x");
    check(head_dim > 0 && head_dim % 2 == 0 && x.cols == int64_t(num_heads) * head_dim, "rope",
          "x " + describe(x) + " is not num_heads " + std::to_string(num_heads) +
              " x even head_dim " + std::to_string(head_dim));
    activate();
    cuda::rope(x.data, x.rows, num_heads, head_dim, positions, inv_freq, stream_);
  }

  void swiglu(const Tensor& gate, const Tensor& up, Tensor& out) override {
    check.activation(gate, "swiglu", "gate");
    check.activation(up, "swiglu", "up");
    check.activation(out, "swiglu", "out");
    check.same_shape(gate, up, "swiglu", "gate", "up");
    check.same_shape(gate, out, "swiglu", "gate", "out");
    activate();
    cuda::swiglu(gate.data, up.data, gate.numel(), out.data, stream_);
  }

  void kv_write(const Tensor& k, const Tensor& v, const int32_t* slots, KvLayer& layer) override;
  void paged_attention(const Tensor& q, const KvLayer& layer, const AttentionBatch& b,
                       int num_heads, float scale, Tensor& out) override;

  void gather_rows(const Tensor& x, const int32_t* rows, Tensor& out) override {
    check(x.dtype == out.dtype && x.cols == out.cols && x.data && out.data, "gather_rows",
          "out " + describe(out) + " must match x " + describe(x) + " in dtype and width");
    check.contiguous(x, "gather_rows", "x");
    check.contiguous(out, "gather_rows", "out");
    activate();
    cuda::gather_rows(x.data, x.rows, size_t(x.cols) * dtype_size(x.dtype), rows, out.rows,
                      out.data, stream_);
  }

  void to_f32(const Tensor& x, Tensor& out) override {
    check.float_weight(x, "to_f32", "x");
    check(out.dtype == DType::kF32 && out.data != nullptr, "to_f32",
          "out must be F32 with data, got " + describe(out));
    check.contiguous(out, "to_f32", "out");
    check.same_shape(x, out, "to_f32", "x", "out");
    activate();
    cuda::convert_to_f32(x.data, x.dtype, x.numel(), out.as<float>(), stream_);
  }

 private:
  // The runtime's current device is per host thread; the engine may call from a thread other
  // than the one that built the backend.
  void activate() { HERD_CUDA_CHECK(cudaSetDevice(device_)); }

  int device_ = 0;
  int sm_count_ = 0;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda::LtMatmul> lt_;
  void* attn_workspace_ = nullptr;  // split-K partials, grown on demand
  void* fp8_scratch_ = nullptr;     // FP8 linear: quantized activations + their scales
  size_t fp8_scratch_bytes_ = 0;
  size_t attn_workspace_bytes_ = 0;
};

// Matrices become BF16 (cuBLASLt multiplies BF16 by BF16); F32/F16 ones are converted on the
// device through a staging buffer. F8E4M3 matrices (row-wise FP8 weights) are copied as they
// are. Vectors — one row (the norms' scales) or one column (FP8 row scales, read as fp32 by
// cuBLASLt) — keep their dtype and lose no precision.
Tensor CudaBackend::adopt_weight(const Tensor& host) {
  // A strided host view (a tensor-parallel column shard of the mmap) becomes a contiguous
  // device matrix: only the shard's bytes cross PCIe and occupy device memory.
  if (host.dtype != DType::kF8E4M3) check.float_weight(host, "adopt_weight", "weight", true);
  check(host.data != nullptr, "adopt_weight", "weight has no data");
  activate();
  Tensor dev = host;
  dev.stride = 0;
  const bool convert =
      host.rows > 1 && host.cols > 1 && host.dtype != DType::kBF16 && host.dtype != DType::kF8E4M3;
  if (convert) dev.dtype = DType::kBF16;
  dev.data = allocate(dev.bytes());
  const size_t elem = dtype_size(host.dtype);
  const size_t row_bytes = size_t(host.cols) * elem, pitch = size_t(host.row_stride()) * elem;
  try {
    if (!convert) {
      HERD_CUDA_CHECK(cudaMemcpy2DAsync(dev.data, row_bytes, host.data, pitch, row_bytes,
                                        size_t(host.rows), cudaMemcpyHostToDevice, stream_));
    } else {
      // About 64 MiB of source (whole rows) at a time: bounded extra device memory, copies
      // long enough to run at full PCIe speed.
      const int64_t chunk_rows =
          std::max<int64_t>(1, int64_t((size_t(64) << 20) / std::max<size_t>(row_bytes, 1)));
      const int64_t rows = host.rows;
      void* staging = allocate(size_t(std::min(chunk_rows, rows)) * row_bytes);
      try {
        for (int64_t begin = 0; begin < rows; begin += chunk_rows) {
          const int64_t count = std::min(chunk_rows, rows - begin);
          // Stream order keeps the next copy into staging behind the conversion reading it.
          HERD_CUDA_CHECK(cudaMemcpy2DAsync(
              staging, row_bytes, static_cast<const char*>(host.data) + size_t(begin) * pitch,
              pitch, row_bytes, size_t(count), cudaMemcpyHostToDevice, stream_));
          cuda::convert_to_bf16(staging, host.dtype, count * host.cols,
                                static_cast<char*>(dev.data) + size_t(begin * host.cols) * 2,
                                stream_);
        }
      } catch (...) {
        deallocate(staging);
        throw;
      }
      deallocate(staging);  // synchronizes first
    }
    HERD_CUDA_CHECK(cudaStreamSynchronize(stream_));
  } catch (...) {
    deallocate(dev.data);
    throw;
  }
  return dev;
}

void CudaBackend::kv_write(const Tensor& k, const Tensor& v, const int32_t* slots, KvLayer& layer) {
  const int64_t width = int64_t(layer.num_kv_heads) * layer.head_dim;
  check.kv_write(k, v, layer);
  activate();
  cuda::kv_write(k.data, v.data, k.rows, width, slots, layer.k.data, layer.v.data, layer.k.rows,
                 stream_);
}

void CudaBackend::paged_attention(const Tensor& q, const KvLayer& layer, const AttentionBatch& b,
                                  int num_heads, float scale, Tensor& out) {
  const char* op = "paged_attention";
  check.attention(q, layer, b.num_tokens, num_heads, out);
  check(num_heads / layer.num_kv_heads <= 64, op,
        "GQA groups of more than 64 query heads per kv head are not supported");
  check(cuda::attention_head_dim_supported(layer.head_dim), op,
        "head_dim " + std::to_string(layer.head_dim) + " is not compiled in (64, 128)");
  // The kernel moves Q, K, V and out 16 bytes at a time.
  for (const void* p : {q.data, out.data, layer.k.data, layer.v.data})
    check(reinterpret_cast<uintptr_t>(p) % 16 == 0, op,
          "q, out and the caches must be 16-byte aligned");
  check(b.num_seqs >= 0 && b.max_blocks_per_seq >= 0 && b.max_seq_len >= 0, op,
        "negative sizes in the batch");
  if (b.num_seqs == 0 || b.num_tokens == 0) return;
  activate();
  const int group = num_heads / layer.num_kv_heads;
  const int splits = cuda::attention_splits(b, layer.num_kv_heads, group, sm_count_);
  const size_t ws = cuda::attention_workspace_bytes(b, num_heads, layer.head_dim, splits);
  if (ws > attn_workspace_bytes_) {
    deallocate(attn_workspace_);
    attn_workspace_ = nullptr;
    attn_workspace_bytes_ = 0;
    attn_workspace_ = allocate(ws);
    attn_workspace_bytes_ = ws;
  }
  cuda::PagedAttentionArgs a;
  a.q = q.data;
  a.k_cache = layer.k.data;
  a.v_cache = layer.v.data;
  a.out = out.data;
  a.cache_rows = layer.k.rows;
  a.block_size = layer.block_size;
  a.num_heads = num_heads;
  a.num_kv_heads = layer.num_kv_heads;
  a.head_dim = layer.head_dim;
  a.scale = scale;
  cuda::paged_attention(a, b, splits, attn_workspace_, stream_);
}

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int device) {
  return std::make_unique<CudaBackend>(device);
}

void* cuda_stream_of(Backend& backend) {
  auto* cuda = dynamic_cast<CudaBackend*>(&backend);
  if (!cuda) throw Error("cuda_stream_of: the backend is " + backend.name() + ", not cuda");
  return cuda->stream();
}

}  // namespace herd
