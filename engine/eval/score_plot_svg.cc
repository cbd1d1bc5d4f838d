#include "engine/eval/score_plot_svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <vector>

namespace herd::eval {

namespace {

constexpr double kWidth = 920, kHeight = 420;
constexpr double kPanelW = 380, kPanelH = 280, kTop = 60;
constexpr double kLeft[2] = {70, 520};

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// Tick values at a round step (1, 2 or 5 times a power of ten) giving 3-6 ticks in [lo, hi],
// so the axes read -4, -2, 0, 2 rather than the raw range split in four.
std::vector<double> nice_ticks(double lo, double hi) {
  std::vector<double> ticks;
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / 4.0, mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10.0 * mag;
  for (double m : {1.0, 2.0, 5.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  const double first = std::ceil(lo / step - 1e-9);
  for (int i = 0;; ++i) {
    const double v = (first + i) * step;  // multiples, not a running sum: no drift
    if (v > hi + step * 1e-9) break;
    ticks.push_back(v == 0.0 ? 0.0 : v);  // -0 prints as "-0"
  }
  return ticks;
}

// x pixel of a score, y pixel of a fraction in [0, ymax], inside panel p.
struct Axes {
  double lo, hi, ymax;
  int panel;
  double x(double v) const { return kLeft[panel] + (v - lo) / (hi - lo) * kPanelW; }
  double y(double f) const { return kTop + kPanelH - f / ymax * kPanelH; }
};

void draw_axes(std::ostringstream& o, const Axes& a, const std::string& xlabel,
               const std::string& ylabel) {
  const double x0 = kLeft[a.panel], y0 = kTop + kPanelH;
  o << "<rect x=\"" << x0 << "\" y=\"" << kTop << "\" width=\"" << kPanelW << "\" height=\""
    << kPanelH << "\" fill=\"none\" stroke=\"#444\"/>\n";
  for (double v : nice_ticks(a.lo, a.hi)) {
    const double px = a.x(v);
    o << "<line x1=\"" << px << "\" y1=\"" << y0 << "\" x2=\"" << px << "\" y2=\"" << y0 + 5
      << "\" stroke=\"#444\"/>\n<text x=\"" << px << "\" y=\"" << y0 + 18
      << "\" text-anchor=\"middle\" font-size=\"11\">" << num(v) << "</text>\n";
  }
  for (double f : nice_ticks(0.0, a.ymax)) {
    const double py = a.y(f);
    o << "<line x1=\"" << x0 - 5 << "\" y1=\"" << py << "\" x2=\"" << x0 << "\" y2=\"" << py
      << "\" stroke=\"#444\"/>\n<text x=\"" << x0 - 8 << "\" y=\"" << py + 4
      << "\" text-anchor=\"end\" font-size=\"11\">" << num(f) << "</text>\n";
  }
  o << "<text x=\"" << x0 + kPanelW / 2 << "\" y=\"" << y0 + 36
    << "\" text-anchor=\"middle\" font-size=\"12\">" << xml_escape(xlabel) << "</text>\n";
  o << "<text x=\"" << x0 - 48 << "\" y=\"" << kTop + kPanelH / 2
    << "\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 " << x0 - 48 << " "
    << kTop + kPanelH / 2 << ")\">" << xml_escape(ylabel) << "</text>\n";
}

}  // namespace

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string score_distribution_svg(const std::string& title, const std::vector<NamedSeries>& series,
                                   int bins) {
  bins = std::max(bins, 1);
  double lo = 0, hi = 0;
  bool any = false;
  for (const auto& s : series)
    for (double v : s.values) {
      lo = any ? std::min(lo, v) : v;
      hi = any ? std::max(hi, v) : v;
      any = true;
    }
  if (!(hi > lo)) {
    lo -= 0.5;
    hi += 0.5;
  }
  const double width = (hi - lo) / bins;
  // Histogram heights as fractions of each series' count, so that series of different sizes
  // compare.
  std::vector<std::vector<double>> frac(series.size(), std::vector<double>(size_t(bins), 0.0));
  double ymax = 0;
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& vals = series[i].values;
    for (double v : vals) {
      const int b = std::clamp(int((v - lo) / width), 0, bins - 1);
      frac[i][size_t(b)] += 1.0 / double(vals.size());
    }
    for (double f : frac[i]) ymax = std::max(ymax, f);
  }
  if (!(ymax > 0)) ymax = 1;
  ymax = std::min(1.0, ymax * 1.1);

  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\"" << kHeight
    << "\" viewBox=\"0 0 " << kWidth << " " << kHeight
    << "\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << "<text x=\"" << kWidth / 2 << "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">"
    << xml_escape(title) << "</text>\n";
  const Axes hist{lo, hi, ymax, 0}, cdf{lo, hi, 1.0, 1};
  draw_axes(o, hist, "reward score", "fraction of responses");
  draw_axes(o, cdf, "reward score", "cumulative fraction");
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    const std::string color = xml_escape(s.color);
    o << "<g class=\"histogram\" fill=\"" << color << "\" fill-opacity=\"0.45\" stroke=\"" << color
      << "\">\n";
    for (int b = 0; b < bins; ++b) {
      const double f = frac[i][size_t(b)];
      if (f <= 0) continue;
      const double x0 = hist.x(lo + b * width), x1 = hist.x(lo + (b + 1) * width);
      o << "<rect x=\"" << x0 << "\" y=\"" << hist.y(f) << "\" width=\"" << x1 - x0
        << "\" height=\"" << hist.y(0) - hist.y(f) << "\"/>\n";
    }
    o << "</g>\n";
    if (!s.values.empty()) {
      std::vector<double> v = s.values;
      std::sort(v.begin(), v.end());
      o << "<polyline class=\"cdf\" fill=\"none\" stroke-width=\"2\" stroke=\"" << color
        << "\" points=\"" << cdf.x(lo) << "," << cdf.y(0);
      for (size_t k = 0; k < v.size(); ++k) {
        const double before = double(k) / double(v.size()),
                     after = double(k + 1) / double(v.size());
        o << " " << cdf.x(v[k]) << "," << cdf.y(before) << " " << cdf.x(v[k]) << ","
          << cdf.y(after);
      }
      o << " " << cdf.x(hi) << "," << cdf.y(1) << "\"/>\n";
    }
    const double ly = kTop + 14 + 18 * double(i);
    o << "<rect x=\"" << kLeft[1] + 12 << "\" y=\"" << ly - 10
      << "\" width=\"12\" height=\"12\" fill=\"" << color << "\"/>\n<text x=\"" << kLeft[1] + 30
      << "\" y=\"" << ly << "\" font-size=\"12\">" << xml_escape(s.name)
      << " (n=" << s.values.size() << ")</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace herd::eval
