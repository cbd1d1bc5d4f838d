#include "engine/sample/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "engine/sample/logprobs.h"
#include "engine/sample/rng.h"
#include "engine/sample/row_math.h"

namespace herd {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// One sample's state as the engine would hold it.
struct Seq {
  SamplingParams params;
  uint64_t seed = 0;
  uint32_t index = 0;
  std::vector<int32_t> prompt;
  std::vector<int32_t> output;
  std::vector<int32_t> eos;

  SampleInput input() const { return SampleInput{&params, seed, index, prompt, output, eos, uint32_t(output.size()), {}}; }
};

int32_t sample_once(Sampler& s, std::vector<float> row, const Seq& seq) {
  return s.sample(row, seq.input()).token;
}

TEST(Sampler, GreedyIsArgmaxWithTiesToLowestId) {
  Sampler s(5);
  Seq seq;
  seq.params.temperature = 0.0;
  EXPECT_EQ(sample_once(s, {0.1f, 2.0f, 1.0f, 2.0f, -1.0f}, seq), 1);
  seq.params.temperature = 1e-6;  // below kGreedyTemperature: still greedy
  EXPECT_EQ(sample_once(s, {0.1f, 2.0f, 1.0f, 2.0f, -1.0f}, seq), 1);
  // Greedy ignores the RNG: any seed, any position gives the same token.
  for (uint64_t seed = 0; seed < 20; ++seed) {
    seq.seed = seed;
    seq.output.assign(seed, 0);
    EXPECT_EQ(sample_once(s, {0.1f, 2.0f, 1.0f, 2.0f, -1.0f}, seq), 1);
  }
}

TEST(Sampler, GreedySeesLogitBiasAndPenalties) {
  Sampler s(4);
  Seq seq;
  seq.params.temperature = 0.0;
  seq.params.logit_bias = {{2, 1.5f}};
  EXPECT_EQ(sample_once(s, {0.0f, 2.0f, 1.0f, 0.0f}, seq), 2);  // 1 + 1.5 > 2
  seq.params.logit_bias.clear();
  seq.params.repetition_penalty = 4.0;
  seq.prompt = {1};
  EXPECT_EQ(sample_once(s, {0.0f, 2.0f, 1.0f, 0.0f}, seq), 2);  // 2 / 4 < 1
  seq.params.repetition_penalty = 1.0;
  seq.params.frequency_penalty = 0.6;
  seq.output = {1, 1};
  EXPECT_EQ(sample_once(s, {0.0f, 2.0f, 1.0f, 0.0f}, seq), 2);  // 2 - 1.2 < 1
}

TEST(Sampler, MinTokensMasksEosAndStopTokenIds) {
  Sampler s(4);
  Seq seq;
  seq.params.temperature = 0.0;
  seq.params.min_tokens = 2;
  seq.params.stop_token_ids = {2};
  seq.eos = {3};
  const std::vector<float> row = {0.0f, 1.0f, 5.0f, 9.0f};
  EXPECT_EQ(sample_once(s, row, seq), 1);  // 0 tokens so far: eos and stop id masked
  seq.output = {1};
  EXPECT_EQ(sample_once(s, row, seq), 1);
  seq.output = {1, 1};
  EXPECT_EQ(sample_once(s, row, seq), 3);  // min_tokens reached
  seq.output = {1};
  seq.params.ignore_eos = true;  // eos is an ordinary token then: not masked
  EXPECT_EQ(sample_once(s, row, seq), 3);
}

// The documented algorithm (sampler.h step 5), written out plainly.
int32_t reference_inverse_cdf(const std::vector<float>& processed, double u) {
  float m = -kInf;
  for (float l : processed) m = std::max(m, l);
  std::vector<float> w(processed.size());
  for (size_t i = 0; i < w.size(); ++i) w[i] = sampler_exp(processed[i] - m);
  std::vector<double> block_sums;
  double total = 0.0;
  for (size_t start = 0; start < w.size(); start += kSumBlock) {
    double lanes[8] = {};
    for (size_t i = start; i < std::min(w.size(), start + kSumBlock); ++i) {
      lanes[(i - start) % 8] += double(w[i]);
    }
    block_sums.push_back(((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
                         ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7])));
    total += block_sums.back();
  }
  const double target = u * total;
  double running = 0.0;
  for (size_t b = 0; b < block_sums.size(); ++b) {
    if (running + block_sums[b] > target) {
      double r = running;
      int32_t last = -1;
      for (size_t i = b * kSumBlock; i < std::min(w.size(), (b + 1) * kSumBlock); ++i) {
        if (w[i] > 0.0f) last = int32_t(i);
        r += double(w[i]);
        if (r > target) return int32_t(i);
      }
      return last;
    }
    running += block_sums[b];
  }
  ADD_FAILURE() << "no block reached the target";
  return -1;
}

TEST(Sampler, FollowsTheDocumentedInverseCdf) {
  std::mt19937 gen(99);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  const int vocab = 5000;  // several sum blocks
  Sampler s(vocab);
  SamplerWorkspace ws(vocab);
  for (int trial = 0; trial < 200; ++trial) {
    Seq seq;
    seq.seed = 1000 + uint64_t(trial);
    seq.index = uint32_t(trial % 3);
    seq.output.assign(size_t(trial % 7), 0);
    seq.params.temperature = std::array<double, 3>{1.0, 0.7, 1.6}[trial % 3];
    seq.params.top_k = std::array<int, 4>{-1, 5, 40, 0}[trial % 4];
    seq.params.top_p = std::array<double, 5>{1.0, 0.8, 0.3, 0.95, 0.5}[(trial / 3) % 5];
    seq.params.min_p = trial % 5 == 0 ? 0.05 : 0.0;
    std::vector<float> row(vocab);
    for (float& l : row) l = normal(gen);

    std::vector<float> processed = row;  // processors 6-8 by hand
    apply_temperature(processed, float(seq.params.temperature));
    apply_min_p(processed, float(seq.params.min_p));
    apply_top_k_top_p(processed, seq.params.top_k, float(seq.params.top_p), ws);
    const double u = sampling_uniform(seq.seed, seq.index, uint32_t(seq.output.size()));
    EXPECT_EQ(sample_once(s, row, seq), reference_inverse_cdf(processed, u)) << trial;
  }
}

// Pearson chi-square of observed counts against expected probabilities.
double chi_square(const std::vector<int>& counts, const std::vector<double>& probs, int n) {
  double chi2 = 0.0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (probs[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " has probability 0";
      continue;
    }
    const double e = probs[i] * n;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi2;
}

std::vector<double> softmax(const std::vector<float>& l, double temperature) {
  std::vector<double> p(l.size());
  double z = 0.0;
  for (size_t i = 0; i < l.size(); ++i) z += p[i] = std::exp(l[i] / temperature);
  for (double& x : p) x /= z;
  return p;
}

TEST(Sampler, SeededDrawsFollowTheSoftmax) {
  // Fixed seeds make this deterministic; the bound is the 99.99% point of chi-square with 7
  // degrees of freedom, so it fails only if the sampler is biased.
  const std::vector<float> row = {1.0f, 0.5f, 2.0f, -1.0f, 0.0f, 1.5f, -0.5f, 0.25f};
  const int n = 40000;
  for (double temperature : {1.0, 0.5}) {
    Sampler s(int(row.size()));
    Seq seq;
    seq.params.temperature = temperature;
    std::vector<int> counts(row.size(), 0);
    for (int i = 0; i < n; ++i) {
      seq.seed = uint64_t(i) * 7919 + 13;
      ++counts[size_t(sample_once(s, row, seq))];
    }
    EXPECT_LT(chi_square(counts, softmax(row, temperature), n), 29.9) << temperature;
  }
}

TEST(Sampler, SeededDrawsFollowTheFilteredDistribution) {
  // top_k = 3 keeps tokens 2, 5, 0; their softmax renormalised is what must come out.
  const std::vector<float> row = {1.0f, 0.5f, 2.0f, -1.0f, 0.0f, 1.5f, -0.5f, 0.25f};
  Sampler s(int(row.size()));
  Seq seq;
  seq.params.top_k = 3;
  std::vector<double> probs(row.size(), 0.0);
  double z = 0.0;
  for (int id : {0, 2, 5}) z += probs[size_t(id)] = std::exp(double(row[size_t(id)]));
  for (double& p : probs) p /= z;
  const int n = 30000;
  std::vector<int> counts(row.size(), 0);
  for (int i = 0; i < n; ++i) {
    seq.seed = 555;
    seq.output.assign(size_t(i % 1000), 0);  // vary the position as well as the sample index
    seq.index = uint32_t(i / 1000);
    ++counts[size_t(sample_once(s, row, seq))];
  }
  EXPECT_LT(chi_square(counts, probs, n), 18.5);  // 99.99% point, 2 degrees of freedom
}

// Logits that differ per step, as a model's would.
std::vector<float> step_logits(int vocab, int step) {
  std::mt19937 gen(uint32_t(step) * 31u + 7u);
  std::normal_distribution<float> normal(0.0f, 1.5f);
  std::vector<float> row(static_cast<size_t>(vocab));
  for (float& l : row) l = normal(gen);
  return row;
}

TEST(Sampler, SameSeedSameTokensWhateverTheInterleaving) {
  const int vocab = 300, steps = 30;
  auto make = [](uint64_t seed, uint32_t index) {
    Seq seq;
    seq.seed = seed;
    seq.index = index;
    seq.prompt = {1, 2, 3};
    seq.params.temperature = 0.9;
    seq.params.top_p = 0.95;
    seq.params.presence_penalty = 0.5;
    return seq;
  };
  // Each sequence alone, with a fresh sampler.
  std::vector<std::vector<int32_t>> alone;
  for (auto [seed, index] : {std::pair<uint64_t, uint32_t>{11, 0}, {11, 1}, {12, 0}}) {
    Sampler s(vocab);
    Seq seq = make(seed, index);
    for (int t = 0; t < steps; ++t)
      seq.output.push_back(sample_once(s, step_logits(vocab, t), seq));
    alone.push_back(seq.output);
  }
  // The same three in one shared sampler, in a different order each step.
  Sampler shared(vocab);
  std::vector<Seq> batch = {make(11, 0), make(11, 1), make(12, 0)};
  std::mt19937 order_gen(5);
  for (int t = 0; t < steps; ++t) {
    std::vector<int> order = {0, 1, 2};
    std::shuffle(order.begin(), order.end(), order_gen);
    for (int i : order) {
      batch[size_t(i)].output.push_back(
          sample_once(shared, step_logits(vocab, t), batch[size_t(i)]));
    }
  }
  for (size_t i = 0; i < batch.size(); ++i) EXPECT_EQ(batch[i].output, alone[i]) << i;
  // Different seeds and different sample indices really do give different streams.
  EXPECT_NE(alone[0], alone[1]);
  EXPECT_NE(alone[0], alone[2]);
}

TEST(Sampler, LogprobsComeFromRawLogits) {
  Sampler s(4);
  Seq seq;
  seq.params.temperature = 0.3;
  seq.params.logit_bias = {{0, 50.0f}};  // forces token 0, but logprobs ignore the bias
  seq.params.logprobs = 2;
  const std::vector<float> row = {0.0f, 3.0f, 1.0f, 2.0f};
  std::vector<float> scratch = row;
  const SampleResult r = s.sample(scratch, seq.input());
  EXPECT_EQ(r.token, 0);
  ASSERT_TRUE(r.logprob.has_value());
  const TokenLogprob want = compute_logprobs(row, 0, 2);
  EXPECT_EQ(r.logprob->id, 0);
  EXPECT_EQ(r.logprob->logprob, want.logprob);
  EXPECT_EQ(r.logprob->top, want.top);
  EXPECT_EQ(r.logprob->top[0].first, 1);
  seq.params.logprobs.reset();
  scratch = row;
  EXPECT_FALSE(s.sample(scratch, seq.input()).logprob.has_value());
}

TEST(Sampler, RejectsRowOfWrongSize) {
  Sampler s(4);
  Seq seq;
  std::vector<float> row(3, 0.0f);
  EXPECT_THROW(s.sample(row, seq.input()), std::invalid_argument);
}

}  // namespace
}  // namespace herd
