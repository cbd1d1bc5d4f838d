#include "engine/sample/processors.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace herd {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

bool in_row(std::span<float> logits, int32_t id) { return id >= 0 && size_t(id) < logits.size(); }

// The candidate ranking shared by top_k and top_p (and documented in the header).
bool ranks_before(const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

}  // namespace

SamplerWorkspace::SamplerWorkspace(int vocab_size)
    : output_count(size_t(vocab_size), 0),
      seen(size_t(vocab_size), 0),
      weights(size_t(vocab_size)),
      block_sums((size_t(vocab_size) + kSumBlock - 1) / kSumBlock) {
  touched.reserve(1024);
  candidates.reserve(size_t(vocab_size));
  survivors.reserve(size_t(vocab_size));
}

void mask_tokens(std::span<float> logits, std::span<const int32_t> ids) {
  for (int32_t id : ids) {
    if (in_row(logits, id)) logits[size_t(id)] = kNegInf;
  }
}

void apply_allowed_tokens(std::span<float> logits, std::span<const uint64_t> allowed) {
  for (size_t w = 0; w * 64 < logits.size(); ++w) {
    const uint64_t bits = w < allowed.size() ? allowed[w] : 0;
    if (bits == ~uint64_t(0)) continue;
    const size_t end = std::min(logits.size(), w * 64 + 64);
    for (size_t i = w * 64; i < end; ++i)
      if (!((bits >> (i - w * 64)) & 1)) logits[i] = kNegInf;
  }
}

void apply_logit_bias(std::span<float> logits, const std::vector<std::pair<int32_t, float>>& bias) {
  for (const auto& [id, b] : bias) {
    if (in_row(logits, id)) logits[size_t(id)] += b;
  }
}

void apply_penalties(std::span<float> logits, std::span<const int32_t> prompt_ids,
                     std::span<const int32_t> output_ids, const Penalties& pen,
                     SamplerWorkspace& ws) {
  if (!pen.active()) return;
  ws.touched.clear();
  // seen: bit 0 = occurs in prompt or output; output_count: occurrences in output.
  auto mark = [&](int32_t id) {
    if (!in_row(logits, id)) return false;
    if (ws.seen[size_t(id)] == 0) {
      ws.seen[size_t(id)] = 1;
      ws.touched.push_back(id);
    }
    return true;
  };
  for (int32_t id : prompt_ids) mark(id);
  for (int32_t id : output_ids) {
    if (mark(id)) ++ws.output_count[size_t(id)];
  }
  for (int32_t id : ws.touched) {
    float& l = logits[size_t(id)];
    if (pen.repetition != 1.0f) l = l > 0.0f ? l / pen.repetition : l * pen.repetition;
    const int32_t c = ws.output_count[size_t(id)];
    if (c > 0) {
      l = l - pen.frequency * float(c);
      l = l - pen.presence;
    }
    ws.seen[size_t(id)] = 0;  // leave the workspace zeroed for the next call
    ws.output_count[size_t(id)] = 0;
  }
  ws.touched.clear();
}

void apply_temperature(std::span<float> logits, float temperature) {
  if (temperature == 1.0f) return;
  for (float& l : logits) l = l / temperature;
}

void apply_min_p(std::span<float> logits, float min_p) {
  if (!(min_p > 0.0f)) return;
  const float m = row_max(logits);
  if (m == kNegInf) return;
  mask_below(logits, m, min_p);
}

namespace {

// Leaves in cands the top_k candidates of the row (unordered) via a heap whose front is the
// worst kept one; returns false when the row has no more than top_k finite logits.
bool select_top_k(std::span<const float> logits, size_t top_k,
                  std::vector<std::pair<float, int32_t>>& cands) {
  cands.clear();
  size_t i = 0;
  for (; i < logits.size() && cands.size() < top_k; ++i) {
    if (logits[i] != kNegInf) cands.emplace_back(logits[i], int32_t(i));
  }
  if (cands.size() < top_k) return false;
  std::make_heap(cands.begin(), cands.end(), ranks_before);
  bool dropped = false;
  for (; i < logits.size(); ++i) {
    // Ids only grow, so an equal logit never ranks before the worst kept one.
    if (logits[i] > cands.front().first) {
      std::pop_heap(cands.begin(), cands.end(), ranks_before);
      cands.back() = {logits[i], int32_t(i)};
      std::push_heap(cands.begin(), cands.end(), ranks_before);
      dropped = true;
    } else if (logits[i] != kNegInf) {
      dropped = true;
    }
  }
  return dropped;
}

constexpr size_t kNotReached = ~size_t{0};

// Ranks cands[sorted, end) a growing chunk at a time until the running sum of weights reaches
// target; returns the prefix length that does, or kNotReached. [0, sorted) must
// already be ranked and rank before the rest.
size_t ranked_prefix_reaching(std::vector<std::pair<float, int32_t>>& cands, size_t sorted,
                              double& running, double target, const float* w) {
  for (size_t chunk = 64; sorted < cands.size(); chunk *= 4) {
    const size_t upto = std::min(cands.size(), sorted + chunk);
    if (upto < cands.size()) {
      std::nth_element(cands.begin() + sorted, cands.begin() + upto, cands.end(), ranks_before);
    }
    std::sort(cands.begin() + sorted, cands.begin() + upto, ranks_before);
    for (size_t i = sorted; i < upto; ++i) {
      running += double(w[cands[i].second]);
      if (running >= target) return i + 1;
    }
    sorted = upto;
  }
  return kNotReached;
}

}  // namespace

namespace {

// Masks everything but cands[0, keep) and records them as the survivors.
void keep_only(std::span<float> logits, const std::vector<std::pair<float, int32_t>>& cands,
               size_t keep, SamplerWorkspace& ws) {
  std::fill(logits.begin(), logits.end(), kNegInf);
  ws.survivors.clear();
  for (size_t i = 0; i < keep; ++i) {
    logits[size_t(cands[i].second)] = cands[i].first;
    ws.survivors.push_back(cands[i].second);
  }
  std::sort(ws.survivors.begin(), ws.survivors.end());
  ws.restricted = true;
}

}  // namespace

void apply_top_k_top_p(std::span<float> logits, int top_k, float top_p, SamplerWorkspace& ws) {
  ws.restricted = false;
  auto& cands = ws.candidates;
  if (top_k > 0 && select_top_k(logits, size_t(top_k), cands)) {
    keep_only(logits, cands, cands.size(), ws);
  }
  if (top_p >= 1.0f) return;

  const float m = row_max(logits);
  if (m == kNegInf) return;
  const float* w = ws.weights.data();
  const double total =
      ws.restricted
          ? exp_weights_sparse(logits, ws.survivors, m, ws.weights.data(), ws.block_sums.data())
          : exp_weights(logits, m, ws.weights.data(), ws.block_sums.data());
  const double target = double(top_p) * total;
  double running = 0.0;
  size_t keep;
  if (ws.restricted) {
    keep = ranked_prefix_reaching(cands, 0, running, target, w);
  } else {
    // First only the heavy tokens: they are a ranked prefix of all candidates.
    constexpr float kHeavy = 0x1.0p-20f;
    cands.clear();
    for (size_t i = 0; i < logits.size(); ++i) {
      if (w[i] >= kHeavy) cands.emplace_back(logits[i], int32_t(i));
    }
    keep = ranked_prefix_reaching(cands, 0, running, target, w);
    if (keep == kNotReached) {  // not enough mass: rank the light ones after them
      const size_t heavy = cands.size();
      for (size_t i = 0; i < logits.size(); ++i) {
        if (w[i] < kHeavy && logits[i] != kNegInf) cands.emplace_back(logits[i], int32_t(i));
      }
      keep = ranked_prefix_reaching(cands, heavy, running, target, w);
    }
  }
  if (keep == kNotReached) return;  // every candidate is needed: nothing more dropped
  keep_only(logits, cands, keep, ws);
}

}  // namespace herd
