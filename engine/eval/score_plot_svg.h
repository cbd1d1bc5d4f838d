// The paper's Fig. 26 as a hand-written SVG: the reward-model score distributions of BF16 and
// FP8 responses, as two overlaid histograms (left panel) and two empirical CDFs (right panel)
// on one shared score axis. No plotting library: a fixed layout, every element plain SVG 1.1.
#pragma once

#include <string>
#include <vector>

namespace herd::eval {

struct NamedSeries {
  std::string name;   // legend text, e.g. "BF16"
  std::string color;  // an SVG color, e.g. "#1f77b4"
  std::vector<double> values;
};

// A complete SVG document (starts with "<svg", ends with "</svg>\n"). `bins` histogram bins
// over [min, max] of all values (a zero-width range is widened by 0.5 each side). Text is
// XML-escaped. Empty series draw nothing but keep their legend entry.
std::string score_distribution_svg(const std::string& title, const std::vector<NamedSeries>& series,
                                   int bins = 20);

// &, <, >, " and ' as XML entities.
std::string xml_escape(const std::string& s);

}  // namespace herd::eval
