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
    : output_count(size_t(vocab_size), 0), seen(size_t(vocab_size), 0) {
  touched.reserve(1024);
  candidates.reserve(size_t(vocab_size));
  kept.reserve(1024);
}

void mask_tokens(std::span<float> logits, std::span<const int32_t> ids) {
  for (int32_t id : ids) {
    if (in_row(logits, id)) logits[size_t(id)] = kNegInf;
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
  float m = kNegInf;
  for (float l : logits) m = std::max(m, l);
  if (m == kNegInf) return;
  for (float& l : logits) {
    if (l != kNegInf && !(std::exp(l - m) >= min_p)) l = kNegInf;
  }
}

void apply_top_k_top_p(std::span<float> logits, int top_k, float top_p, SamplerWorkspace& ws) {
  ws.restricted = false;
  ws.kept.clear();
  const bool use_p = top_p < 1.0f;
  if (top_k <= 0 && !use_p) return;

  auto& cands = ws.candidates;
  cands.clear();
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] != kNegInf) cands.emplace_back(logits[i], int32_t(i));
  }
  size_t keep = cands.size();
  if (top_k > 0 && size_t(top_k) < keep) {
    std::nth_element(cands.begin(), cands.begin() + top_k, cands.end(), ranks_before);
    keep = size_t(top_k);
  }
  if (use_p && keep > 1) {
    float m = kNegInf;
    for (size_t i = 0; i < keep; ++i) m = std::max(m, cands[i].first);
    double total = 0.0;
    for (size_t i = 0; i < keep; ++i) total += double(std::exp(cands[i].first - m));
    const double target = double(top_p) * total;
    // Rank a growing prefix: [0, sorted) is in final order and ranks before everything after.
    double running = 0.0;
    size_t sorted = 0, cut = keep;
    for (size_t chunk = 64; sorted < keep && cut == keep; chunk *= 4) {
      const size_t upto = std::min(keep, sorted + chunk);
      if (upto < keep) {
        std::nth_element(cands.begin() + sorted, cands.begin() + upto, cands.begin() + keep,
                         ranks_before);
      }
      std::sort(cands.begin() + sorted, cands.begin() + upto, ranks_before);
      for (size_t i = sorted; i < upto; ++i) {
        running += double(std::exp(cands[i].first - m));
        if (running >= target) {
          cut = i + 1;
          break;
        }
      }
      sorted = upto;
    }
    keep = cut;
  }
  if (keep == cands.size()) return;  // nothing was dropped

  ws.restricted = true;
  for (size_t i = 0; i < keep; ++i) ws.kept.push_back(cands[i].second);
  std::sort(ws.kept.begin(), ws.kept.end());
  // Blank the row, then put the survivors back (their values are still in `cands`).
  std::fill(logits.begin(), logits.end(), kNegInf);
  for (size_t i = 0; i < keep; ++i) logits[size_t(cands[i].second)] = cands[i].first;
}

}  // namespace herd
