// The numbers of the FP8 quality report (`herd eval fp8`, issue 11 part 5): KL divergence of
// two next-token distributions given as logits, top-1 agreement, the length two greedy
// continuations agree for, and a summary (mean, percentiles, extremes) of a list of values.
// Plain host math in double precision: nothing here knows about models or backends.
#pragma once

#include <cstdint>
#include <vector>

namespace herd::eval {

// log softmax of logits[0, n), in double (stable: shifted by the max).
std::vector<double> log_softmax(const float* logits, int64_t n);

// KL(P || Q) in nats, P = softmax(p_logits) (the reference, BF16), Q = softmax(q_logits)
// (the candidate, FP8), over n classes. Terms where P is 0 in double contribute 0. Never
// negative (a rounding residue below 0 is returned as 0).
double kl_divergence(const float* p_logits, const float* q_logits, int64_t n);

// Entropy of softmax(logits) in nats.
double entropy(const float* logits, int64_t n);

// Index of the largest logit (the first one on ties, as std::max_element).
int64_t argmax(const float* logits, int64_t n);

// How many leading tokens a and b share: 0 when they differ at once, min(|a|, |b|) when one is
// a prefix of the other.
int64_t agreement_length(const std::vector<int32_t>& a, const std::vector<int32_t>& b);

// The q-quantile (q in [0, 1]) of values, linear interpolation between closest ranks (numpy's
// default): sorted[(n - 1) q]. Empty input: 0.
double percentile(std::vector<double> values, double q);

struct Summary {
  int64_t count = 0;
  double mean = 0, min = 0, p50 = 0, p99 = 0, max = 0;
};
Summary summarize(const std::vector<double>& values);

}  // namespace herd::eval
