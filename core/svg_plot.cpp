#include "svg_plot.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace saq::host {

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

namespace {

constexpr double kW = 560, kH = 340, kLeft = 64, kRight = 170, kTop = 34, kBottom = 46;
const char* const kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

struct Axis {
  double lo, hi;
  double map(double v, double a, double b) const { return hi == lo ? (a + b) / 2 : a + (v - lo) / (hi - lo) * (b - a); }
};

std::string header(const std::string& title) {
  return fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
                     "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
                     "<text x=\"{}\" y=\"20\" font-size=\"13\" font-weight=\"bold\">{}</text>\n",
                     kW, kH, kW, kH, kLeft, xml_escape(title));
}

std::string axes(const Axis& x, const Axis& y, const std::string& xl, const std::string& yl) {
  const double x0 = kLeft, x1 = kW - kRight, y0 = kH - kBottom, y1 = kTop;
  std::string s = fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n", x0, y1,
                              x1 - x0, y0 - y1);
  for (int i = 0; i <= 4; ++i) {
    const double vx = x.lo + (x.hi - x.lo) * i / 4, vy = y.lo + (y.hi - y.lo) * i / 4;
    const double px = x.map(vx, x0, x1), py = y.map(vy, y0, y1);
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{:.3g}</text>\n", px, y0 + 14, vx);
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{:.4g}</text>\n", x0 - 4, py + 4, vy);
    s += fmt::format("<line x1=\"{:.1f}\" y1=\"{}\" x2=\"{:.1f}\" y2=\"{}\" stroke=\"#ddd\"/>\n", px, y0, px, y1);
  }
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", (x0 + x1) / 2, kH - 8, xml_escape(xl));
  s += fmt::format("<text x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\">{}</text>\n",
                   (y0 + y1) / 2, (y0 + y1) / 2, xml_escape(yl));
  return s;
}

/// A colour ramp from dark blue (0) through teal to light yellow (1).
std::string ramp(double t) {
  const double stops[][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  t = std::clamp(t, 0.0, 1.0) * 4;
  const int i = std::min(3, static_cast<int>(t));
  const double f = t - i;
  auto c = [&](int k) { return static_cast<int>(stops[i][k] + (stops[i + 1][k] - stops[i][k]) * f); };
  return fmt::format("rgb({},{},{})", c(0), c(1), c(2));
}

}  // namespace

std::string line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                       const std::vector<Series>& series) {
  Axis x{std::numeric_limits<double>::max(), std::numeric_limits<double>::lowest()}, y = x;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
      if (std::isfinite(s.y[i])) x.lo = std::min(x.lo, s.x[i]), x.hi = std::max(x.hi, s.x[i]),
                                 y.lo = std::min(y.lo, s.y[i]), y.hi = std::max(y.hi, s.y[i]);
  if (x.lo > x.hi) x = {0, 1}, y = {0, 1};
  std::string out = header(title) + axes(x, y, x_label, y_label);
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    std::string points;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
      if (std::isfinite(s.y[i]))
        points += fmt::format("{:.1f},{:.1f} ", x.map(s.x[i], kLeft, kW - kRight), y.map(s.y[i], kH - kBottom, kTop));
    const char* colour = kPalette[k % 8];
    out += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\" points=\"{}\"/>\n", colour, points);
    for (size_t i : s.marked)
      if (i < s.x.size() && i < s.y.size() && std::isfinite(s.y[i]))
        out += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"/>\n",
                           x.map(s.x[i], kLeft, kW - kRight), y.map(s.y[i], kH - kBottom, kTop), colour);
    const double ly = kTop + 14 + 16.0 * static_cast<double>(k);
    out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\"/>"
                       "<text x=\"{}\" y=\"{}\">{}</text>\n", kW - kRight + 8, ly, kW - kRight + 24, ly, colour,
                       kW - kRight + 28, ly + 4, xml_escape(s.name));
  }
  return out + "</svg>\n";
}

std::string contour_chart(const std::string& title, const std::vector<double>& xs, const std::vector<double>& ys,
                          const std::vector<double>& values, int levels) {
  const size_t nx = xs.size(), ny = ys.size();
  const Axis x{xs.front(), xs.back()}, y{ys.front(), ys.back()};
  const auto [mn, mx] = std::minmax_element(values.begin(), values.end());
  const Axis v{*mn, *mx};
  std::string out = header(title);
  const double x0 = kLeft, x1 = kW - kRight, y0 = kH - kBottom, y1 = kTop;
  const double cw = (x1 - x0) / static_cast<double>(nx), ch = (y0 - y1) / static_cast<double>(ny);
  for (size_t j = 0; j < ny; ++j)
    for (size_t i = 0; i < nx; ++i)
      out += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"/>\n",
                         x0 + cw * static_cast<double>(i), y0 - ch * static_cast<double>(j + 1), cw + 0.5, ch + 0.5,
                         ramp(v.map(values[j * nx + i], 0, 1)));
  // iso-lines by marching squares over the cell centres
  auto px = [&](double i) { return x0 + cw * (i + 0.5); };
  auto py = [&](double j) { return y0 - ch * (j + 0.5); };
  for (int l = 1; l <= levels; ++l) {
    const double level = v.lo + (v.hi - v.lo) * l / (levels + 1);
    std::string path;
    for (size_t j = 0; j + 1 < ny; ++j)
      for (size_t i = 0; i + 1 < nx; ++i) {
        const double c[4] = {values[j * nx + i], values[j * nx + i + 1], values[(j + 1) * nx + i + 1], values[(j + 1) * nx + i]};
        const double cx[4] = {0, 1, 1, 0}, cy[4] = {0, 0, 1, 1};
        std::vector<std::pair<double, double>> cut;
        for (int e = 0; e < 4; ++e) {
          const int f = (e + 1) % 4;
          if ((c[e] < level) == (c[f] < level)) continue;
          const double t = (level - c[e]) / (c[f] - c[e]);
          cut.emplace_back(static_cast<double>(i) + cx[e] + (cx[f] - cx[e]) * t, static_cast<double>(j) + cy[e] + (cy[f] - cy[e]) * t);
        }
        for (size_t k = 0; k + 1 < cut.size(); k += 2)
          path += fmt::format("M{:.1f},{:.1f}L{:.1f},{:.1f}", px(cut[k].first), py(cut[k].second), px(cut[k + 1].first),
                              py(cut[k + 1].second));
      }
    if (!path.empty()) out += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"white\" stroke-width=\"0.8\"/>\n", path);
  }
  out += axes(x, y, "α (direction 1)", "β (direction 2)");
  for (int k = 0; k <= 4; ++k) {  // the colour legend
    const double t = k / 4.0;
    out += fmt::format("<rect x=\"{}\" y=\"{:.1f}\" width=\"14\" height=\"22\" fill=\"{}\"/><text x=\"{}\" y=\"{:.1f}\">{:.4g}</text>\n",
                       kW - kRight + 10, kH - kBottom - 22.0 * (k + 1), ramp(t), kW - kRight + 28, kH - kBottom - 22.0 * k - 8,
                       v.lo + (v.hi - v.lo) * t);
  }
  return out + "</svg>\n";
}

}  // namespace saq::host
