// SSE framing and the timing of /v1/completions stream chunks, driven with made-up arrival
// times (no clocks involved).
#include <gtest/gtest.h>

#include "benchmarks/client/completion_stream.h"
#include "benchmarks/client/sse_parser.h"

namespace herd::bench {
namespace {

using Strings = std::vector<std::string>;

TEST(SseParser, EventsSplitAnywhere) {
  const std::string body = "data: one\n\ndata: {\"a\": 2}\n\ndata: [DONE]\n\n";
  // Every way of cutting the body in two gives the same events.
  for (size_t cut = 0; cut <= body.size(); ++cut) {
    SseParser p;
    Strings got = p.feed(body.substr(0, cut));
    for (auto& s : p.feed(body.substr(cut))) got.push_back(s);
    EXPECT_EQ(got, (Strings{"one", "{\"a\": 2}", "[DONE]"})) << "cut at " << cut;
    EXPECT_FALSE(p.has_partial());
  }
}

TEST(SseParser, CrLfCommentsAndMultiLineData) {
  SseParser p;
  Strings got = p.feed(": keep-alive\r\n\r\nevent: x\r\ndata: a\r\ndata:b\r\n\r\ndata: c\n");
  EXPECT_EQ(got, (Strings{"a\nb"}));
  EXPECT_TRUE(p.has_partial());  // "c" has not ended yet
  EXPECT_EQ(p.feed("\n"), (Strings{"c"}));
}

std::string chunk(const std::string& text) {
  return "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,"
         "\"text\":\"" +
         text + "\",\"finish_reason\":null}]}\n\n";
}

TEST(CompletionStream, TimesContentChunks) {
  StreamRecorder rec(9.5);
  CompletionStreamReader r(rec);
  r.feed(chunk("Hel"), 10.0);
  const std::string second = chunk("lo");
  r.feed(second.substr(0, 20), 10.1);  // half an event: not a chunk yet
  r.feed(second.substr(20), 10.25);    // completes at 10.25
  // The finish chunk (empty text) and the usage chunk carry no content.
  r.feed(
      "data: {\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":\"length\"}]}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,"
      "\"total_tokens\":5}}\n\n",
      10.5);
  EXPECT_FALSE(r.done());
  r.feed("data: [DONE]\n\n", 10.75);
  EXPECT_TRUE(r.done());
  RequestOutput o = rec.finish(10.8);
  EXPECT_TRUE(o.success) << o.error;
  EXPECT_DOUBLE_EQ(o.ttft, 0.5);
  ASSERT_EQ(o.itl.size(), 1u);
  EXPECT_DOUBLE_EQ(o.itl[0], 0.25);
  EXPECT_NEAR(o.latency, 1.3, 1e-12);
  EXPECT_EQ(o.content_chunks, 2);
  EXPECT_EQ(o.prompt_tokens, 3);
  EXPECT_EQ(o.output_tokens, 2);
  EXPECT_EQ(o.generated_text, "Hello");
}

TEST(CompletionStream, SeveralEventsInOneReadShareItsTime) {
  StreamRecorder rec(0);
  CompletionStreamReader r(rec);
  r.feed(chunk("a") + chunk("b") + chunk("c"), 2.0);
  RequestOutput o = rec.finish(3.0);
  EXPECT_DOUBLE_EQ(o.ttft, 2.0);
  EXPECT_EQ(o.itl, (std::vector<double>{0.0, 0.0}));
  EXPECT_EQ(o.output_tokens, -1);  // no usage chunk
}

TEST(CompletionStream, ErrorEventFailsTheRequest) {
  StreamRecorder rec(0);
  CompletionStreamReader r(rec);
  r.feed(chunk("a"), 1.0);
  r.feed("data: {\"error\":{\"message\":\"The engine failed the request.\"}}\n\n", 1.5);
  RequestOutput o = rec.finish(2.0);
  EXPECT_FALSE(o.success);
  EXPECT_NE(o.error.find("The engine failed the request."), std::string::npos) << o.error;
}

TEST(CompletionStream, NoContentIsAFailure) {
  StreamRecorder rec(0);
  CompletionStreamReader r(rec);
  r.feed("data: [DONE]\n\n", 1.0);
  RequestOutput o = rec.finish(1.0);
  EXPECT_FALSE(o.success);
  EXPECT_FALSE(o.error.empty());
}

TEST(CompletionStream, GarbageChunkIsAFailure) {
  StreamRecorder rec(0);
  CompletionStreamReader r(rec);
  r.feed(chunk("a"), 1.0);
  r.feed("data: {not json\n\n", 1.1);
  RequestOutput o = rec.finish(1.2);
  EXPECT_FALSE(o.success);
  EXPECT_NE(o.error.find("not a JSON object"), std::string::npos) << o.error;
}

}  // namespace
}  // namespace herd::bench
