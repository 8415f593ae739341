#pragma once
/// Plots as standalone SVG text (no script, no external reference), for analysis reports: line charts with a
/// legend, and a filled contour map of a surface with iso-lines.
#include <cstddef>
#include <string>
#include <vector>

namespace saq::host {

struct Series {
  std::string name;
  std::vector<double> x, y;
  std::vector<std::size_t> marked;  ///< indices of points drawn as rings on the line
};

/// Lines over a shared x axis, marked points as rings; non-finite points are left out. Axis ranges cover every series.
std::string line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                       const std::vector<Series>& series);

/// values[j·|xs| + i] at (xs[i], ys[j]): cells coloured by value (dark low, light high), iso-lines at `levels`
/// evenly spaced values between the minimum and the maximum.
std::string contour_chart(const std::string& title, const std::vector<double>& xs, const std::vector<double>& ys,
                          const std::vector<double>& values, int levels = 8);

/// `text` escaped for XML/HTML.
std::string xml_escape(const std::string& text);

}  // namespace saq::host
