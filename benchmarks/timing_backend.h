// TimingBackend: a Backend that forwards every call to another backend and adds the call's
// wall time to a per-phase total, so that bench_decode --breakdown can say where a forward
// pass spends its time without touching the model code. Exact for synchronous backends (CPU);
// linear() is split by which weight it reads (registered with name_weight()), so each group's
// bytes / seconds can be compared with the machine's read bandwidth.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "benchmarks/bench_util.h"
#include "kernels/backend.h"

namespace herd::bench {

class TimingBackend final : public Backend {
 public:
  enum Phase {
    kLinearQkv,
    kLinearO,
    kLinearGateUp,
    kLinearDown,
    kLmHead,
    kLinearOther,
    kAttention,
    kKvWrite,
    kNorm,
    kRope,
    kSwiglu,
    kEmbedding,
    kOther,  // uploads, downloads, row gathers, the logits conversion
    kNumPhases
  };
  static const char* phase_name(int p) {
    static const char* names[kNumPhases] = {
        "linear q/k/v", "linear o",  "linear gate/up", "linear down", "lm_head",
        "linear other", "attention", "kv_write",       "rms_norm",    "rope",
        "swiglu",       "embedding", "other (copies)"};
    return names[p];
  }

  explicit TimingBackend(Backend& inner) : inner_(inner) {}

  struct Totals {
    std::array<double, kNumPhases> seconds{};
    std::array<double, kNumPhases> bytes{};  // weight bytes read (linear phases)
  };

  // Which linear phase a weight (by data pointer) belongs to.
  void name_weight(const Tensor& w, Phase p) { weight_phase_[w.data] = p; }
  void reset() { totals_ = Totals{}; }
  const Totals& totals() const { return totals_; }

  std::string name() const override { return inner_.name(); }
  DType activation_dtype() const override { return inner_.activation_dtype(); }
  DType kv_dtype() const override { return inner_.kv_dtype(); }
  void* allocate(size_t bytes) override { return inner_.allocate(bytes); }
  void deallocate(void* p) override { inner_.deallocate(p); }
  void upload(void* dst, const void* src, size_t bytes) override {
    Timed t(*this, kOther);
    inner_.upload(dst, src, bytes);
  }
  void download(void* dst, const void* src, size_t bytes) override {
    Timed t(*this, kOther);
    inner_.download(dst, src, bytes);
  }
  void synchronize() override { inner_.synchronize(); }
  Tensor adopt_weight(const Tensor& host) override { return inner_.adopt_weight(host); }
  void release_weight(const Tensor& w) override { inner_.release_weight(w); }
  void prepare_linear(const Tensor& w) override { inner_.prepare_linear(w); }

  void embedding(const Tensor& table, const int32_t* ids, Tensor& out) override {
    Timed t(*this, kEmbedding);
    inner_.embedding(table, ids, out);
  }
  void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) override {
    Timed t(*this, kNorm);
    inner_.rms_norm(x, weight, eps, out);
  }
  void add_rms_norm(Tensor& residual, const Tensor& x, const Tensor& weight, float eps,
                    Tensor& out) override {
    Timed t(*this, kNorm);
    inner_.add_rms_norm(residual, x, weight, eps, out);
  }
  void linear(const Tensor& x, const LinearWeight& w, Tensor& out) override {
    const auto it = weight_phase_.find(w.w.data);
    const Phase p = it == weight_phase_.end() ? kLinearOther : it->second;
    totals_.bytes[size_t(p)] += double(w.w.bytes() + w.row_scale.bytes());
    Timed t(*this, p);
    inner_.linear(x, w, out);
  }
  // A fused projection is timed as one op under its first weight's phase (QKV, gate/up);
  // with split_groups(true) it runs as one linear() per weight instead (the unfused model, for
  // a same-run comparison).
  void split_groups(bool on) { split_groups_ = on; }
  void linear_group(const Tensor& x, const LinearWeight* ws, Tensor* outs,
                    size_t count) override {
    if (count == 0 || ws == nullptr || outs == nullptr)
      return inner_.linear_group(x, ws, outs, count);  // its error
    if (split_groups_) {
      for (size_t i = 0; i < count; ++i) linear(x, ws[i], outs[i]);
      return;
    }
    const auto it = weight_phase_.find(ws[0].w.data);
    const Phase p = it == weight_phase_.end() ? kLinearOther : it->second;
    for (size_t i = 0; i < count; ++i)
      totals_.bytes[size_t(p)] += double(ws[i].w.bytes() + ws[i].row_scale.bytes());
    Timed t(*this, p);
    inner_.linear_group(x, ws, outs, count);
  }
  void rope(Tensor& x, int num_heads, int head_dim, const int32_t* positions,
            const float* inv_freq) override {
    Timed t(*this, kRope);
    inner_.rope(x, num_heads, head_dim, positions, inv_freq);
  }
  void swiglu(const Tensor& gate, const Tensor& up, Tensor& out) override {
    Timed t(*this, kSwiglu);
    inner_.swiglu(gate, up, out);
  }
  void kv_write(const Tensor& k, const Tensor& v, const int32_t* slots, KvLayer& layer) override {
    Timed t(*this, kKvWrite);
    inner_.kv_write(k, v, slots, layer);
  }
  void paged_attention(const Tensor& q, const KvLayer& layer, const AttentionBatch& b,
                       int num_heads, float scale, Tensor& out) override {
    Timed t(*this, kAttention);
    inner_.paged_attention(q, layer, b, num_heads, scale, out);
  }
  void gather_rows(const Tensor& x, const int32_t* rows, Tensor& out) override {
    Timed t(*this, kOther);
    inner_.gather_rows(x, rows, out);
  }
  void to_f32(const Tensor& x, Tensor& out) override {
    Timed t(*this, kOther);
    inner_.to_f32(x, out);
  }

 private:
  struct Timed {
    Timed(TimingBackend& b, Phase p) : b(b), p(p), t0(Clock::now()) {}
    ~Timed() { b.totals_.seconds[size_t(p)] += seconds_since(t0); }
    TimingBackend& b;
    Phase p;
    Clock::time_point t0;
  };

  Backend& inner_;
  std::map<const void*, Phase> weight_phase_;
  Totals totals_;
  bool split_groups_ = false;
};

}  // namespace herd::bench
