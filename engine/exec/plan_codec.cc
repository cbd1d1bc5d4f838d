#include "engine/exec/plan_codec.h"

#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "engine/common/error.h"

namespace herd {
namespace {

constexpr uint8_t kVersion = 1;

class Writer {
 public:
  explicit Writer(RankMessage kind) { put(uint8_t(kind)), put(kVersion); }
  template <typename T>
  void put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const size_t at = bytes_.size();
    bytes_.resize(at + sizeof(T));
    std::memcpy(bytes_.data() + at, &v, sizeof(T));
  }
  template <typename T>
  void put_vec(const std::vector<T>& v) {
    put(uint64_t(v.size()));
    const size_t at = bytes_.size();
    bytes_.resize(at + v.size() * sizeof(T));
    if (!v.empty()) std::memcpy(bytes_.data() + at, v.data(), v.size() * sizeof(T));
  }
  void put_str(const std::string& s) {
    put(uint64_t(s.size()));
    bytes_.insert(bytes_.end(), s.begin(), s.end());
  }
  std::vector<uint8_t> take() { return std::move(bytes_); }

 private:
  std::vector<uint8_t> bytes_;
};

class Reader {
 public:
  Reader(const std::vector<uint8_t>& b, RankMessage kind) : b_(b) {
    if (get<uint8_t>() != uint8_t(kind)) fail("unexpected message kind");
    if (get<uint8_t>() != kVersion) fail("unknown message version (ranks run different herds?)");
  }
  template <typename T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, b_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  template <typename T>
  std::vector<T> get_vec() {
    const uint64_t n = get<uint64_t>();
    if (n > (b_.size() - at_) / sizeof(T)) fail("length past the end");
    std::vector<T> v(n);
    if (n) std::memcpy(v.data(), b_.data() + at_, n * sizeof(T));
    at_ += n * sizeof(T);
    return v;
  }
  std::string get_str() {
    const uint64_t n = get<uint64_t>();
    need(n);
    std::string s(reinterpret_cast<const char*>(b_.data() + at_), n);
    at_ += n;
    return s;
  }
  void done() const {
    if (at_ != b_.size()) fail("trailing bytes");
  }

 private:
  void need(uint64_t n) const {
    if (n > b_.size() - at_) fail("truncated");
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw Error("malformed rank message: " + why);
  }
  const std::vector<uint8_t>& b_;
  size_t at_ = 0;
};

void put_params(Writer& w, const SamplingParams& p) {
  // Only what the sampler reads (stop strings stay in the engine core).
  w.put(p.temperature), w.put(p.top_p), w.put(int32_t(p.top_k)), w.put(p.min_p);
  w.put(p.presence_penalty), w.put(p.frequency_penalty), w.put(p.repetition_penalty);
  w.put(uint64_t(p.logit_bias.size()));
  for (const auto& [id, bias] : p.logit_bias) w.put(id), w.put(bias);
  w.put(int32_t(p.logprobs ? *p.logprobs : -1));
  w.put_vec(p.stop_token_ids);
  w.put(uint8_t(p.ignore_eos));
  w.put(int32_t(p.min_tokens));
}

SamplingParams get_params(Reader& r) {
  SamplingParams p;
  p.temperature = r.get<double>(), p.top_p = r.get<double>(), p.top_k = r.get<int32_t>();
  p.min_p = r.get<double>();
  p.presence_penalty = r.get<double>(), p.frequency_penalty = r.get<double>();
  p.repetition_penalty = r.get<double>();
  const uint64_t nb = r.get<uint64_t>();
  for (uint64_t i = 0; i < nb; ++i) {
    const int32_t id = r.get<int32_t>();
    p.logit_bias.emplace_back(id, r.get<float>());
  }
  const int32_t lp = r.get<int32_t>();
  if (lp >= 0) p.logprobs = lp;
  p.stop_token_ids = r.get_vec<int32_t>();
  p.ignore_eos = r.get<uint8_t>() != 0;
  p.min_tokens = r.get<int32_t>();
  return p;
}

}  // namespace

std::vector<uint8_t> encode_plan(const ExecPlan& plan) {
  if (plan.late_masks.valid())
    throw std::logic_error("encode_plan: a plan with late masks cannot leave the process");
  Writer w(RankMessage::kPlan);
  w.put(plan.id);
  const StepInput& in = plan.input;
  w.put_vec(in.token_ids), w.put_vec(in.positions), w.put_vec(in.slot_mapping);
  w.put_vec(in.query_start), w.put_vec(in.seq_lens), w.put_vec(in.block_tables);
  w.put(int32_t(in.max_blocks_per_seq));
  w.put_vec(in.logits_rows);
  w.put(uint64_t(plan.samples.size()));
  for (const SampleSpec& s : plan.samples) {
    w.put_str(s.request_id);
    put_params(w, s.params);
    w.put(s.seed), w.put(s.sample_index), w.put(s.num_generated);
    w.put_vec(s.prompt_ids), w.put_vec(s.output_ids);
    w.put_vec(s.allowed_tokens);
  }
  return w.take();
}

ExecPlan decode_plan(const std::vector<uint8_t>& bytes) {
  Reader r(bytes, RankMessage::kPlan);
  ExecPlan plan;
  plan.id = r.get<uint64_t>();
  StepInput& in = plan.input;
  in.token_ids = r.get_vec<int32_t>(), in.positions = r.get_vec<int32_t>();
  in.slot_mapping = r.get_vec<int32_t>(), in.query_start = r.get_vec<int32_t>();
  in.seq_lens = r.get_vec<int32_t>(), in.block_tables = r.get_vec<int32_t>();
  in.max_blocks_per_seq = r.get<int32_t>();
  in.logits_rows = r.get_vec<int32_t>();
  const uint64_t ns = r.get<uint64_t>();
  if (ns != in.logits_rows.size()) throw Error("malformed rank message: sample count");
  for (uint64_t i = 0; i < ns; ++i) {
    SampleSpec s;
    s.request_id = r.get_str();
    s.params = get_params(r);
    s.seed = r.get<uint64_t>(), s.sample_index = r.get<uint32_t>();
    s.num_generated = r.get<uint32_t>();
    s.prompt_ids = r.get_vec<int32_t>(), s.output_ids = r.get_vec<int32_t>();
    s.allowed_tokens = r.get_vec<uint64_t>();
    plan.samples.push_back(std::move(s));
  }
  r.done();
  return plan;
}

std::vector<uint8_t> encode_result(const ExecResult& res) {
  Writer w(RankMessage::kResult);
  w.put(res.id);
  w.put_vec(res.tokens), w.put_vec(res.nonfinite), w.put_vec(res.scores);
  w.put(uint64_t(res.logprobs.size()));
  for (const auto& lp : res.logprobs) {
    w.put(uint8_t(lp.has_value()));
    if (!lp) continue;
    w.put(lp->id), w.put(lp->logprob);
    w.put(uint64_t(lp->top.size()));
    for (const auto& [id, v] : lp->top) w.put(id), w.put(v);
  }
  return w.take();
}

ExecResult decode_result(const std::vector<uint8_t>& bytes) {
  Reader r(bytes, RankMessage::kResult);
  ExecResult res;
  res.id = r.get<uint64_t>();
  res.tokens = r.get_vec<int32_t>(), res.nonfinite = r.get_vec<uint8_t>();
  res.scores = r.get_vec<float>();
  const uint64_t n = r.get<uint64_t>();
  if (n != res.tokens.size() || res.nonfinite.size() != n)
    throw Error("malformed rank message: result row counts");
  for (uint64_t i = 0; i < n; ++i) {
    if (!r.get<uint8_t>()) {
      res.logprobs.emplace_back();
      continue;
    }
    TokenLogprob lp;
    lp.id = r.get<int32_t>(), lp.logprob = r.get<float>();
    const uint64_t nt = r.get<uint64_t>();
    for (uint64_t j = 0; j < nt; ++j) {
      const int32_t id = r.get<int32_t>();
      lp.top.emplace_back(id, r.get<float>());
    }
    res.logprobs.push_back(std::move(lp));
  }
  r.done();
  return res;
}

std::vector<uint8_t> encode_stop() { return Writer(RankMessage::kStop).take(); }

RankMessage message_kind(const std::vector<uint8_t>& bytes) {
  if (bytes.empty() || bytes[0] < 1 || bytes[0] > 3)
    throw Error("malformed rank message: unknown kind");
  return RankMessage(bytes[0]);
}

}  // namespace herd
