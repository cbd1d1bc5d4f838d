// The CPU Backend: checks every op's shapes and dtypes (a mismatch is a bug in the caller and
// throws herd::Error naming the op and tensor), then runs the SIMD kernels of cpu_ops.h on a
// persistent thread pool. Memory is plain host memory; weights are used in place.
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/common/error.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/linear_bf16.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/op_checks.h"

namespace herd {
namespace {

using op_checks::describe;
constexpr op_checks::Checks check("cpu backend", DType::kF32);

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads) : pool_(threads), bf16_gemm_(cpu::bf16_gemm_enabled()) {}

  std::string name() const override { return "cpu"; }
  DType activation_dtype() const override { return DType::kF32; }
  DType kv_dtype() const override { return DType::kF32; }

  void* allocate(size_t bytes) override {
    const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    check(p != nullptr, "allocate", "out of host memory for " + std::to_string(bytes) + " bytes");
    return p;
  }
  void deallocate(void* p) override { std::free(p); }
  void upload(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  Tensor adopt_weight(const Tensor& host) override { return host; }  // used in place (mmap)
  void release_weight(const Tensor& w) override {
    std::unique_lock lock(packed_mu_);
    packed_.erase(w.data);
  }
  void prepare_linear(const Tensor& w) override {
    if (!bf16_gemm_ || w.data == nullptr) return;
    if (w.dtype != DType::kBF16 && w.dtype != DType::kF8E4M3) return;
    check(w.row_stride() >= w.cols, "prepare_linear",
          "w row stride " + std::to_string(w.row_stride()) + " is shorter than its rows " +
              describe(w));
    auto packed =
        w.dtype == DType::kBF16
            ? cpu::pack_bf16_weight(pool_, w.as<uint16_t>(), w.rows, w.cols, w.row_stride())
            : cpu::pack_fp8_weight(pool_, w.as<uint8_t>(), w.rows, w.cols, w.row_stride());
    std::unique_lock lock(packed_mu_);
    packed_.insert_or_assign(w.data, PackedView{w.row_stride(), std::move(packed)});
  }

  void embedding(const Tensor& table, const int32_t* ids, Tensor& out) override {
    check.float_weight(table, "embedding", "table");
    check.activation(out, "embedding", "out");
    check(out.cols == table.cols, "embedding",
          "out " + describe(out) + " must have the table's width " + describe(table));
    const size_t row_bytes = size_t(table.cols) * dtype_size(table.dtype);
    for (int64_t t = 0; t < out.rows; ++t) {
      check(ids[t] >= 0 && ids[t] < table.rows, "embedding",
            "token id " + std::to_string(ids[t]) + " outside the vocabulary of " +
                std::to_string(table.rows));
      cpu::convert_to_f32(pool_, static_cast<const char*>(table.data) + size_t(ids[t]) * row_bytes,
                          table.dtype, table.cols, out.as<float>() + t * out.cols);
    }
  }

  void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) override {
    check.norm(x, weight, out, "rms_norm");
    cpu::rms_norm(pool_, x.as<float>(), x.rows, x.cols, weight.data, weight.dtype, eps,
                  out.as<float>());
  }

  void add_rms_norm(Tensor& residual, const Tensor& x, const Tensor& weight, float eps,
                    Tensor& out) override {
    check.norm(x, weight, out, "add_rms_norm");
    check.activation(residual, "add_rms_norm", "residual");
    check.same_shape(residual, x, "add_rms_norm", "residual", "x");
    cpu::add_rms_norm(pool_, residual.as<float>(), x.as<float>(), x.rows, x.cols, weight.data,
                      weight.dtype, eps, out.as<float>());
  }

  void linear(const Tensor& x, const LinearWeight& lw, Tensor& out) override {
    check_linear(x, lw, out, "linear");
    run_linear(x, lw, out);
  }

  void linear_group(const Tensor& x, const LinearWeight* ws_ptr, Tensor* outs_ptr,
                    size_t count) override {
    check(count > 0 && ws_ptr != nullptr && outs_ptr != nullptr, "linear_group",
          "needs at least one weight and output");
    const std::span<const LinearWeight> ws(ws_ptr, count);
    const std::span<Tensor> outs(outs_ptr, count);
    for (size_t i = 0; i < ws.size(); ++i) check_linear(x, ws[i], outs[i], "linear_group");
    // One fused job when every weight is packed and of one kind (FP8 weights with one cap, so
    // that one quantization of x serves them all); otherwise each runs as linear() would.
    // Reused per thread: this runs twice per layer per step.
    thread_local std::vector<const cpu::PackedBf16Weight*> packed;
    thread_local std::vector<const float*> scales;
    thread_local std::vector<float*> out_ptrs;
    packed.resize(ws.size());
    scales.resize(ws.size());
    out_ptrs.resize(ws.size());
    bool fused = true;
    for (size_t i = 0; i < ws.size(); ++i) {
      packed[i] = packed_for(ws[i].w);
      scales[i] = ws[i].row_scale.as<float>();
      out_ptrs[i] = outs[i].as<float>();
      fused = fused && packed[i] != nullptr && ws[i].fp8() == ws[0].fp8() &&
              ws[i].act_scale_ub == ws[0].act_scale_ub;
    }
    if (!fused) {
      for (size_t i = 0; i < ws.size(); ++i) run_linear(x, ws[i], outs[i]);
      return;
    }
    if (ws[0].fp8())
      return cpu::linear_fp8_packed_group(pool_, x.as<float>(), x.rows, packed, scales,
                                          ws[0].act_scale_ub, out_ptrs);
    cpu::linear_bf16_packed_group(pool_, x.as<float>(), x.rows, packed, out_ptrs);
  }

  // The checks of linear(), shared with linear_group(): dtypes, scales and shapes.
  void check_linear(const Tensor& x, const LinearWeight& lw, const Tensor& out, const char* op) {
    const Tensor& w = lw.w;
    const Tensor& s = lw.row_scale;
    check.activation(x, op, "x");
    check.activation(out, op, "out");
    if (lw.fp8()) {
      check(w.data != nullptr && w.row_stride() >= w.cols, op,
            "F8_E4M3 w has no data or a short row stride: " + describe(w));
      check(s.data != nullptr && s.dtype == DType::kF32 && s.rows == w.rows && s.cols == 1 &&
                s.contiguous(),
            op,
            "an F8_E4M3 weight needs F32 row scales [" + std::to_string(w.rows) + ", 1], got " +
                describe(s));
    } else {
      check(s.data == nullptr, op,
            "row scales come only with an F8_E4M3 weight, got w " + describe(w));
      check.float_weight(w, op, "w", /*strided_ok=*/true);
    }
    check(x.cols == w.cols && out.rows == x.rows && out.cols == w.rows, op,
          "shapes do not fit: x " + describe(x) + " * w " + describe(w) + "^T -> out " +
              describe(out));
  }

  // A checked linear on the packed kernel when prepare_linear() packed this weight.
  void run_linear(const Tensor& x, const LinearWeight& lw, Tensor& out) {
    const Tensor& w = lw.w;
    const cpu::PackedBf16Weight* p = packed_for(w);
    if (lw.fp8()) {
      if (p)
        return cpu::linear_fp8_packed(pool_, x.as<float>(), x.rows, *p, lw.row_scale.as<float>(),
                                      lw.act_scale_ub, out.as<float>());
      return cpu::linear_fp8(pool_, x.as<float>(), x.rows, x.cols, w.as<uint8_t>(), w.row_stride(),
                             lw.row_scale.as<float>(), lw.act_scale_ub, w.rows, out.as<float>());
    }
    if (p) return cpu::linear_bf16_packed(pool_, x.as<float>(), x.rows, *p, out.as<float>());
    cpu::linear(pool_, x.as<float>(), x.rows, x.cols, w.data, w.row_stride(), w.dtype, w.rows,
                out.as<float>());
  }

  // The packed copy prepare_linear() made of exactly this view (same shape and stride), if any.
  const cpu::PackedBf16Weight* packed_for(const Tensor& w) {
    if (!bf16_gemm_ || (w.dtype != DType::kBF16 && w.dtype != DType::kF8E4M3)) return nullptr;
    std::shared_lock lock(packed_mu_);
    const auto it = packed_.find(w.data);
    if (it == packed_.end()) return nullptr;
    const PackedView& v = it->second;
    if (v.packed.rows != w.rows || v.packed.cols != w.cols || v.stride != w.row_stride())
      return nullptr;
    return &v.packed;
  }

  void rope(Tensor& x, int num_heads, int head_dim, const int32_t* positions,
            const float* inv_freq) override {
    check.activation(x, "rope", "x");
    check(head_dim > 0 && head_dim % 2 == 0 && x.cols == int64_t(num_heads) * head_dim, "rope",
          "x " + describe(x) + " is not num_heads " + std::to_string(num_heads) +
              " x even head_dim " + std::to_string(head_dim));
    cpu::rope(pool_, x.as<float>(), x.rows, num_heads, head_dim, positions, inv_freq);
  }

  void swiglu(const Tensor& gate, const Tensor& up, Tensor& out) override {
    check.activation(gate, "swiglu", "gate");
    check.activation(up, "swiglu", "up");
    check.activation(out, "swiglu", "out");
    check.same_shape(gate, up, "swiglu", "gate", "up");
    check.same_shape(gate, out, "swiglu", "gate", "out");
    cpu::swiglu(pool_, gate.as<float>(), up.as<float>(), gate.numel(), out.as<float>());
  }

  void kv_write(const Tensor& k, const Tensor& v, const int32_t* slots, KvLayer& layer) override;
  void paged_attention(const Tensor& q, const KvLayer& layer, const AttentionBatch& b,
                       int num_heads, float scale, Tensor& out) override;

  void gather_rows(const Tensor& x, const int32_t* rows, Tensor& out) override {
    check.contiguous(x, "gather_rows", "x");
    check.contiguous(out, "gather_rows", "out");
    check(x.dtype == out.dtype && x.cols == out.cols, "gather_rows",
          "out " + describe(out) + " must match x " + describe(x) + " in dtype and width");
    const size_t row_bytes = size_t(x.cols) * dtype_size(x.dtype);
    for (int64_t i = 0; i < out.rows; ++i) {
      check(rows[i] >= 0 && rows[i] < x.rows, "gather_rows",
            "row " + std::to_string(rows[i]) + " outside x " + describe(x));
      std::memcpy(static_cast<char*>(out.data) + size_t(i) * row_bytes,
                  static_cast<const char*>(x.data) + size_t(rows[i]) * row_bytes, row_bytes);
    }
  }

  void to_f32(const Tensor& x, Tensor& out) override {
    check.float_weight(x, "to_f32", "x");
    check.activation(out, "to_f32", "out");
    check.same_shape(x, out, "to_f32", "x", "out");
    cpu::convert_to_f32(pool_, x.data, x.dtype, x.numel(), out.as<float>());
  }

 private:
  cpu::ThreadPool pool_;
  const bool bf16_gemm_;  // BF16 and FP8 weights go through the packed AVX-512 BF16 GEMM
  struct PackedView {
    int64_t stride = 0;  // the prepared view's row stride (a shard is a strided view)
    cpu::PackedBf16Weight packed;
  };
  std::shared_mutex packed_mu_;
  std::unordered_map<const void*, PackedView> packed_;  // keyed by the weight's data pointer
};

void CpuBackend::kv_write(const Tensor& k, const Tensor& v, const int32_t* slots, KvLayer& layer) {
  const int64_t width = int64_t(layer.num_kv_heads) * layer.head_dim;
  check.kv_write(k, v, layer);
  const size_t row_bytes = size_t(width) * sizeof(float);
  for (int64_t t = 0; t < k.rows; ++t) {
    if (slots[t] < 0) continue;  // padding token: nothing to store
    check(slots[t] < layer.k.rows, "kv_write",
          "slot " + std::to_string(slots[t]) + " outside the cache of " +
              std::to_string(layer.k.rows) + " slots");
    std::memcpy(layer.k.as<float>() + int64_t(slots[t]) * width, k.as<float>() + t * width,
                row_bytes);
    std::memcpy(layer.v.as<float>() + int64_t(slots[t]) * width, v.as<float>() + t * width,
                row_bytes);
  }
}

void CpuBackend::paged_attention(const Tensor& q, const KvLayer& layer, const AttentionBatch& b,
                                 int num_heads, float scale, Tensor& out) {
  const char* op = "paged_attention";
  check.attention(q, layer, b.num_tokens, num_heads, out);
  check(b.num_seqs >= 0 && b.query_start[0] == 0 && b.query_start[b.num_seqs] == b.num_tokens, op,
        "query_start must run from 0 to num_tokens");
  const int64_t num_blocks = layer.k.rows / layer.block_size;
  for (int s = 0; s < b.num_seqs; ++s) {
    const int q_len = b.query_start[s + 1] - b.query_start[s];
    const int seq_len = b.seq_lens[s];
    const int blocks = (seq_len + layer.block_size - 1) / layer.block_size;
    check(q_len >= 0 && seq_len >= q_len && blocks <= b.max_blocks_per_seq, op,
          "sequence " + std::to_string(s) + ": q_len " + std::to_string(q_len) + ", seq_len " +
              std::to_string(seq_len) + " do not fit max_blocks_per_seq " +
              std::to_string(b.max_blocks_per_seq));
    for (int j = 0; j < blocks; ++j) {
      const int32_t blk = b.block_tables[int64_t(s) * b.max_blocks_per_seq + j];
      check(blk >= 0 && blk < num_blocks, op,
            "sequence " + std::to_string(s) + " block " + std::to_string(j) + " -> physical " +
                std::to_string(blk) + " outside the cache of " + std::to_string(num_blocks));
    }
  }
  const cpu::PagedKv kv{layer.k.as<float>(), layer.v.as<float>(), layer.block_size,
                        layer.num_kv_heads, layer.head_dim};
  cpu::paged_attention(pool_, q.as<float>(), kv, b, num_heads, scale, out.as<float>());
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  return std::make_unique<CpuBackend>(threads);
}

}  // namespace herd
