// The Fig. 26 SVG is a well-formed document: one root, every tag closed in order, text
// escaped, one histogram group and one CDF per series.
#include "engine/eval/score_plot_svg.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace herd::eval {
namespace {

// Checks that tags nest and close properly; returns "" or what is wrong. Attribute values
// must not contain '<' or '>' (escaped text never does).
std::string check_well_formed(const std::string& doc) {
  std::vector<std::string> stack;
  int roots = 0;
  for (size_t i = 0; i < doc.size();) {
    if (doc[i] != '<') {
      if (stack.empty() && doc[i] != '\n' && doc[i] != ' ') return "text outside the root";
      if (doc[i] == '&') {
        const size_t semi = doc.find(';', i);
        const std::string ent = doc.substr(i, semi - i + 1);
        if (ent != "&amp;" && ent != "&lt;" && ent != "&gt;" && ent != "&quot;" && ent != "&apos;")
          return "bad entity " + ent;
      }
      ++i;
      continue;
    }
    const size_t end = doc.find('>', i);
    if (end == std::string::npos) return "unterminated tag";
    std::string tag = doc.substr(i + 1, end - i - 1);
    i = end + 1;
    if (tag.find('<') != std::string::npos) return "'<' inside a tag";
    if (tag[0] == '/') {
      if (stack.empty() || stack.back() != tag.substr(1)) return "mismatched </" + tag + ">";
      stack.pop_back();
      continue;
    }
    const bool self_closing = tag.back() == '/';
    const std::string name = tag.substr(0, tag.find_first_of(" /"));
    if (stack.empty()) ++roots;
    if (!self_closing) stack.push_back(name);
  }
  if (!stack.empty()) return "unclosed <" + stack.back() + ">";
  if (roots != 1) return "not exactly one root element";
  return "";
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(ScorePlotSvg, IsWellFormedWithTwoHistogramsAndTwoCdfs) {
  const std::string svg = score_distribution_svg(
      "BF16 <vs> FP8 & \"friends\"",
      {{"BF16", "#1f77b4", {0.1, 0.2, 0.2, 0.5, 0.9}}, {"FP8", "#d62728", {0.15, 0.3, 0.8}}});
  EXPECT_EQ(check_well_formed(svg), "") << svg;
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  EXPECT_EQ(count(svg, "class=\"histogram\""), 2u);
  EXPECT_EQ(count(svg, "class=\"cdf\""), 2u);
  EXPECT_NE(svg.find("BF16 &lt;vs&gt; FP8 &amp; &quot;friends&quot;"), std::string::npos);
  EXPECT_NE(svg.find("BF16 (n=5)"), std::string::npos);
  EXPECT_NE(svg.find("FP8 (n=3)"), std::string::npos);
}

// Axis labels at round steps inside the data range (-4.12 .. 3.469 gives -4, -2, 0, 2), not the
// raw range split in four (-4.12, -2.223, ...).
TEST(ScorePlotSvg, TickLabelsAreRoundNumbers) {
  const std::string svg = score_distribution_svg("t", {{"BF16", "#1f77b4", {-4.12, 0.3, 3.469}}});
  for (const char* label : {">-4</text>", ">-2</text>", ">0</text>", ">2</text>"})
    EXPECT_NE(svg.find(label), std::string::npos) << label;
  EXPECT_EQ(svg.find(">-4.12</text>"), std::string::npos);
  EXPECT_EQ(svg.find(">-0</text>"), std::string::npos);
  EXPECT_EQ(check_well_formed(svg), "");
}

TEST(ScorePlotSvg, EqualValuesAndEmptySeriesStillDraw) {
  const std::string svg =
      score_distribution_svg("t", {{"a", "red", {1.0, 1.0, 1.0}}, {"b", "blue", {}}}, 5);
  EXPECT_EQ(check_well_formed(svg), "") << svg;
  EXPECT_EQ(count(svg, "class=\"cdf\""), 1u);  // an empty series has no curve
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST(ScorePlotSvg, CheckerCatchesBrokenDocuments) {
  EXPECT_NE(check_well_formed("<svg><g></svg>"), "");
  EXPECT_NE(check_well_formed("<svg>a & b</svg>"), "");
  EXPECT_NE(check_well_formed("<svg/><svg/>"), "");
}

}  // namespace
}  // namespace herd::eval
