// calculate_metrics and its presentation on hand-built request outputs.
#include "benchmarks/client/metrics.h"

#include <gtest/gtest.h>

#include "benchmarks/client/report.h"

namespace herd::bench {
namespace {

struct Fixture {
  std::vector<BenchRequest> reqs;
  std::vector<RequestOutput> outs;
  Fixture() {
    reqs.resize(3);
    reqs[0].prompt_len = 5;
    reqs[1].prompt_len = 7;
    reqs[2].prompt_len = 9;
    outs.resize(3);
    // A: 11 tokens, first after 0.1 s, stream over at 1.1 s.
    outs[0].success = true;
    outs[0].ttft = 0.1;
    outs[0].latency = 1.1;
    outs[0].itl = {0.2, 0.3};
    outs[0].output_tokens = 11;
    outs[0].prompt_tokens = 5;
    outs[0].content_chunks = 3;
    // B: one token, no usage from the server: counts fall back to chunks and the workload.
    outs[1].success = true;
    outs[1].ttft = 0.3;
    outs[1].latency = 0.3;
    outs[1].content_chunks = 1;
    // C: failed.
    outs[2].error = "boom";
  }
};

TEST(Metrics, HandComputed) {
  Fixture f;
  BenchmarkMetrics m = calculate_metrics(f.reqs, f.outs, 2.0);
  EXPECT_EQ(m.completed, 2);
  EXPECT_EQ(m.failed, 1);
  EXPECT_EQ(m.total_input, 5 + 7);
  EXPECT_EQ(m.total_output, 11 + 1);
  EXPECT_DOUBLE_EQ(m.request_throughput, 1.0);
  EXPECT_DOUBLE_EQ(m.output_throughput, 6.0);
  EXPECT_DOUBLE_EQ(m.total_token_throughput, 12.0);
  EXPECT_NEAR(m.ttft_ms.mean, 200, 1e-9);
  EXPECT_NEAR(m.ttft_ms.std, 100, 1e-9);
  // TPOT only for requests with more than one token: (1.1 - 0.1) / (11 - 1) s.
  EXPECT_NEAR(m.tpot_ms.mean, 100, 1e-9);
  EXPECT_NEAR(m.tpot_ms.p99, 100, 1e-9);
  EXPECT_NEAR(m.itl_ms.mean, 250, 1e-9);
  EXPECT_NEAR(m.itl_ms.p90, 290, 1e-9);  // 200 + 0.9 * 100
  EXPECT_NEAR(m.e2el_ms.median, 700, 1e-9);
  ASSERT_EQ(m.errors.size(), 1u);
  EXPECT_EQ(m.errors[0], "boom");
}

TEST(Metrics, JsonHasVllmNames) {
  Fixture f;
  auto j = metrics_json(calculate_metrics(f.reqs, f.outs, 2.0));
  for (const char* k :
       {"duration", "completed", "failed", "total_input_tokens", "total_output_tokens",
        "request_throughput", "output_throughput", "total_token_throughput", "errors"})
    EXPECT_TRUE(j.contains(k)) << k;
  for (const char* metric : {"ttft", "tpot", "itl", "e2el"})
    for (const char* stat : {"mean", "median", "std", "p90", "p99"})
      EXPECT_TRUE(j.contains(std::string(stat) + "_" + metric + "_ms")) << stat << metric;
  EXPECT_EQ(j["completed"], 2);
  EXPECT_EQ(j["total_output_tokens"], 12);
  EXPECT_NEAR(j["mean_tpot_ms"].get<double>(), 100, 1e-9);
}

TEST(Metrics, TableLayout) {
  Fixture f;
  const std::string t = format_table(calculate_metrics(f.reqs, f.outs, 2.0));
  EXPECT_EQ(t.rfind("============ Serving Benchmark Result ============\n", 0), 0u) << t;
  // vLLM's "{:<40} {:<10}" rows.
  EXPECT_NE(t.find("Successful requests:                     2         \n"), std::string::npos)
      << t;
  EXPECT_NE(t.find("Mean TPOT (ms):                          100.00    \n"), std::string::npos)
      << t;
  EXPECT_NE(t.find("-----Time per Output Token (excl. 1st token)------\n"), std::string::npos) << t;
  EXPECT_NE(t.find("P90 ITL (ms):                            290.00    \n"), std::string::npos)
      << t;
}

TEST(Metrics, AllFailed) {
  std::vector<BenchRequest> reqs(1);
  std::vector<RequestOutput> outs(1);
  outs[0].error = "refused";
  BenchmarkMetrics m = calculate_metrics(reqs, outs, 1.0);
  EXPECT_EQ(m.completed, 0);
  EXPECT_EQ(m.failed, 1);
  EXPECT_EQ(m.ttft_ms.mean, 0);
  EXPECT_EQ(m.request_throughput, 0);
}

}  // namespace
}  // namespace herd::bench
