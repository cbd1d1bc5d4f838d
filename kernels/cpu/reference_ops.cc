// Scalar reference kernels. Sums are accumulated in double so that the reference is at least as
// accurate as any fp32 kernel measured against it.
#include "kernels/cpu/reference_ops.h"

#include <cmath>
#include <vector>

namespace herd::cpu::ref {

float load_f32(const void* data, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::kF32:
      return static_cast<const float*>(data)[i];
    case DType::kF16:
      return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::kBF16:
      return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::kF8E4M3:
      return f8e4m3_to_f32(static_cast<const uint8_t*>(data)[i]);
    case DType::kI32:
      break;
  }
  return 0.0f;
}

void linear(const float* x, int64_t n, int64_t in_features, const void* w, DType w_dtype,
            int64_t out_features, float* out) {
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t j = 0; j < out_features; ++j) {
      double sum = 0.0;
      for (int64_t i = 0; i < in_features; ++i) {
        sum += double(x[r * in_features + i]) * load_f32(w, w_dtype, j * in_features + i);
      }
      out[r * out_features + j] = float(sum);
    }
  }
}

void rms_norm(const float* x, int64_t n, int64_t dim, const void* weight, DType w_dtype, float eps,
              float* out) {
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x + r * dim;
    double ss = 0.0;
    for (int64_t i = 0; i < dim; ++i) ss += double(xr[i]) * xr[i];
    const float inv = float(1.0 / std::sqrt(ss / double(dim) + eps));
    for (int64_t i = 0; i < dim; ++i) {
      out[r * dim + i] = load_f32(weight, w_dtype, i) * (xr[i] * inv);
    }
  }
}

void add_rms_norm(float* residual, const float* x, int64_t n, int64_t dim, const void* weight,
                  DType w_dtype, float eps, float* out) {
  for (int64_t i = 0; i < n * dim; ++i) residual[i] += x[i];
  rms_norm(residual, n, dim, weight, w_dtype, eps, out);
}

void swiglu(const float* gate, const float* up, int64_t count, float* out) {
  for (int64_t i = 0; i < count; ++i) {
    const double g = gate[i];
    out[i] = float(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

void rope(float* x, int64_t n, int num_heads, int head_dim, const int32_t* positions,
          const float* inv_freq) {
  const int half = head_dim / 2;
  std::vector<float> c(static_cast<size_t>(half)), s(static_cast<size_t>(half));
  for (int64_t t = 0; t < n; ++t) {
    rope_angles(positions[t], inv_freq, half, c.data(), s.data());
    for (int h = 0; h < num_heads; ++h) {
      float* v = x + (t * num_heads + h) * head_dim;
      for (int j = 0; j < half; ++j) {
        const float x1 = v[j], x2 = v[j + half];
        v[j] = x1 * c[j] - x2 * s[j];
        v[j + half] = x2 * c[j] + x1 * s[j];
      }
    }
  }
}

void convert_to_f32(const void* src, DType dtype, int64_t count, float* out) {
  for (int64_t i = 0; i < count; ++i) out[i] = load_f32(src, dtype, i);
}

void paged_attention(const float* q, const PagedKv& kv, const AttentionBatch& b, int num_heads,
                     float scale, float* out) {
  const int hd = kv.head_dim;
  const int group = num_heads / kv.num_kv_heads;
  const int64_t kv_stride = int64_t(kv.num_kv_heads) * hd;
  const int64_t q_stride = int64_t(num_heads) * hd;
  std::vector<double> scores;
  std::vector<double> acc(static_cast<size_t>(hd));
  for (int s = 0; s < b.num_seqs; ++s) {
    const int q_begin = b.query_start[s], q_len = b.query_start[s + 1] - q_begin;
    const int seq_len = b.seq_lens[s];
    const int32_t* table = b.block_tables + int64_t(s) * b.max_blocks_per_seq;
    for (int r = 0; r < q_len; ++r) {
      const int pos = seq_len - q_len + r;  // attends to tokens 0..pos
      for (int h = 0; h < num_heads; ++h) {
        const float* qv = q + (q_begin + r) * q_stride + int64_t(h) * hd;
        const int64_t head_off = int64_t(h / group) * hd;
        scores.assign(size_t(pos + 1), 0.0);
        double max_score = -INFINITY;
        for (int t = 0; t <= pos; ++t) {
          const int64_t slot =
              int64_t(table[t / kv.block_size]) * kv.block_size + t % kv.block_size;
          const float* kr = kv.k + slot * kv_stride + head_off;
          double dot = 0.0;
          for (int d = 0; d < hd; ++d) dot += double(qv[d]) * kr[d];
          scores[size_t(t)] = dot * scale;
          max_score = std::max(max_score, scores[size_t(t)]);
        }
        double denom = 0.0;
        acc.assign(size_t(hd), 0.0);
        for (int t = 0; t <= pos; ++t) {
          const double p = std::exp(scores[size_t(t)] - max_score);
          denom += p;
          const int64_t slot =
              int64_t(table[t / kv.block_size]) * kv.block_size + t % kv.block_size;
          const float* vr = kv.v + slot * kv_stride + head_off;
          for (int d = 0; d < hd; ++d) acc[size_t(d)] += p * vr[d];
        }
        float* o = out + (q_begin + r) * q_stride + int64_t(h) * hd;
        for (int d = 0; d < hd; ++d) o[d] = float(acc[size_t(d)] / denom);
      }
    }
  }
}

}  // namespace herd::cpu::ref
