//===- Plot.cpp - fem-tune's SVG plot of a tuning run ---------------------===//
#include "tools/fem-tune/Plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace femc::tune {
namespace {

/// `s` with the five XML special characters escaped.
std::string xml(const std::string &s) {
  std::string out;
  for (char c : s) {
    switch (c) {
    case '&': out += "&amp;"; break;
    case '<': out += "&lt;"; break;
    case '>': out += "&gt;"; break;
    case '"': out += "&quot;"; break;
    case '\'': out += "&apos;"; break;
    default: out += c;
    }
  }
  return out;
}

/// A coordinate with two decimals (deterministic, locale-free for "C").
std::string num(double v) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.2f", v);
  return buffer;
}

/// A tick label: as few digits as tell the ticks apart.
std::string tickText(double v, double step) {
  int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step)));
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", std::min(decimals, 6), v);
  return buffer;
}

/// A 1, 2 or 5 times a power of ten step giving about `count` ticks.
double niceStep(double range, int count) {
  double raw = range / count;
  double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * p)
      return m * p;
  return 10 * p;
}

std::string parameterLabel(const std::string &name) {
  if (name == "q")
    return "tile q (query rows or chunk per workgroup)";
  if (name == "k")
    return "tile k (keys per step or channel block)";
  if (name == "vec")
    return "vec (vector lanes)";
  if (name == "threads")
    return "threads";
  return name;
}

} // namespace

std::string plotSvg(const PlotData &data) {
  std::vector<const PlotPoint *> points;
  for (const PlotPoint &p : data.points)
    if (std::isfinite(p.medianMs) && p.medianMs > 0)
      points.push_back(&p);
  // The parameters: q, k, vec first, then the others by name.
  std::set<std::string> names;
  for (const PlotPoint *p : points)
    for (auto &[name, value] : p->tiles)
      names.insert(name);
  std::vector<std::string> params;
  for (const char *n : {"q", "k", "vec"})
    if (names.erase(n))
      params.push_back(n);
  params.insert(params.end(), names.begin(), names.end());

  // The shared time axis.
  double lo = 0, hi = 1;
  if (!points.empty()) {
    lo = hi = points.front()->medianMs;
    for (const PlotPoint *p : points) {
      double s = std::isfinite(p->spread) ? std::max(0.0, p->spread) : 0;
      lo = std::min(lo, p->medianMs * (1 - s));
      hi = std::max(hi, p->medianMs * (1 + s));
    }
  }
  if (hi - lo < hi * 1e-6)
    hi = lo + std::max(hi * 0.1, 1e-6);
  double step = niceStep(hi - lo, 5);
  lo = std::max(0.0, std::floor(lo / step) * step);
  hi = std::ceil(hi / step) * step;

  const double panelW = 280, panelH = 240, gap = 50, left = 80, top = 92,
               bottom = 60, right = 20;
  size_t panels = std::max<size_t>(1, params.size());
  double width = left + panels * panelW + (panels - 1) * gap + right;
  double height = top + panelH + bottom;
  auto yOf = [&](double ms) {
    return top + panelH - (ms - lo) / (hi - lo) * panelH;
  };

  std::string s;
  s += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width) +
       "\" height=\"" + num(height) + "\" viewBox=\"0 0 " + num(width) + " " +
       num(height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += "<text x=\"" + num(left) + "\" y=\"20\" font-size=\"14\" "
       "font-weight=\"bold\">" + xml(data.title) + "</text>\n";
  s += "<text x=\"" + num(left) + "\" y=\"38\">" + xml(data.subtitle) +
       "</text>\n";
  // Legend.
  double lx = left, ly = 60;
  s += "<g class=\"legend\">\n";
  s += "<circle cx=\"" + num(lx + 5) + "\" cy=\"" + num(ly - 4) +
       "\" r=\"3.5\" fill=\"#555\"/><text x=\"" + num(lx + 14) + "\" y=\"" +
       num(ly) + "\">candidate (median; bar: median &#177; MAD)</text>\n";
  lx += 290;
  s += "<rect x=\"" + num(lx) + "\" y=\"" + num(ly - 9) +
       "\" width=\"10\" height=\"10\" fill=\"none\" stroke=\"#1f77b4\" "
       "stroke-width=\"2\"/><text x=\"" + num(lx + 16) + "\" y=\"" + num(ly) +
       "\">default</text>\n";
  lx += 80;
  s += "<circle cx=\"" + num(lx + 5) + "\" cy=\"" + num(ly - 4) +
       "\" r=\"7\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\"/>"
       "<text x=\"" + num(lx + 16) + "\" y=\"" + num(ly) + "\">chosen</text>\n";
  s += "</g>\n";

  if (points.empty()) {
    s += "<text x=\"" + num(left) + "\" y=\"" + num(top + panelH / 2) +
         "\">no candidate was timed</text>\n</svg>\n";
    return s;
  }

  for (size_t pi = 0; pi < params.size(); ++pi) {
    const std::string &param = params[pi];
    double x0 = left + pi * (panelW + gap);
    std::set<int64_t> valueSet;
    for (const PlotPoint *p : points)
      if (auto it = p->tiles.find(param); it != p->tiles.end())
        valueSet.insert(it->second);
    std::vector<int64_t> values(valueSet.begin(), valueSet.end());
    double column = panelW / values.size();
    auto xOf = [&](int64_t v) {
      size_t i = std::lower_bound(values.begin(), values.end(), v) -
                 values.begin();
      return x0 + column * (i + 0.5);
    };
    s += "<g class=\"panel\" data-parameter=\"" + xml(param) + "\">\n";
    s += "<rect x=\"" + num(x0) + "\" y=\"" + num(top) + "\" width=\"" +
         num(panelW) + "\" height=\"" + num(panelH) +
         "\" fill=\"none\" stroke=\"#333\"/>\n";
    // Time ticks and grid lines.
    for (double t = lo; t <= hi + step * 1e-6; t += step) {
      double y = yOf(t);
      s += "<line x1=\"" + num(x0) + "\" y1=\"" + num(y) + "\" x2=\"" +
           num(x0 + panelW) + "\" y2=\"" + num(y) +
           "\" stroke=\"#ddd\"/>\n";
      if (pi == 0)
        s += "<text x=\"" + num(x0 - 6) + "\" y=\"" + num(y + 4) +
             "\" text-anchor=\"end\">" + tickText(t, step) + "</text>\n";
    }
    // Parameter ticks.
    for (int64_t v : values)
      s += "<text x=\"" + num(xOf(v)) + "\" y=\"" + num(top + panelH + 16) +
           "\" text-anchor=\"middle\">" + std::to_string(v) + "</text>\n";
    s += "<text x=\"" + num(x0 + panelW / 2) + "\" y=\"" +
         num(top + panelH + 38) + "\" text-anchor=\"middle\">" +
         xml(parameterLabel(param)) + "</text>\n";
    if (pi == 0)
      s += "<text transform=\"translate(" + num(x0 - 58) + "," +
           num(top + panelH / 2) +
           ") rotate(-90)\" text-anchor=\"middle\">time per launch (ms)"
           "</text>\n";
    // The points of each column side by side, in the given order.
    std::map<int64_t, std::vector<const PlotPoint *>> byValue;
    for (const PlotPoint *p : points)
      if (auto it = p->tiles.find(param); it != p->tiles.end())
        byValue[it->second].push_back(p);
    for (auto &[value, column_points] : byValue) {
      size_t n = column_points.size();
      double spacing = std::min(8.0, column * 0.8 / n);
      for (size_t j = 0; j < n; ++j) {
        const PlotPoint &p = *column_points[j];
        double x = xOf(value) + (j - (n - 1) / 2.0) * spacing;
        double sp = std::isfinite(p.spread) ? std::max(0.0, p.spread) : 0;
        double y = yOf(p.medianMs), y1 = yOf(p.medianMs * (1 - sp)),
               y2 = yOf(p.medianMs * (1 + sp));
        std::string tip;
        for (const std::string &name : params)
          if (auto it = p.tiles.find(name); it != p.tiles.end())
            tip += (tip.empty() ? "" : " ") + name + "=" +
                   std::to_string(it->second);
        char timeText[96];
        std::snprintf(timeText, sizeof timeText, ": %.4f ms, spread %.1f%%",
                      p.medianMs, sp * 100);
        tip += timeText;
        if (p.isDefault)
          tip += " (default)";
        if (p.isChosen)
          tip += " (chosen)";
        s += "<g class=\"point\"><title>" + xml(tip) + "</title>";
        s += "<line x1=\"" + num(x) + "\" y1=\"" + num(y1) + "\" x2=\"" +
             num(x) + "\" y2=\"" + num(y2) + "\" stroke=\"#555\"/>";
        s += "<line x1=\"" + num(x - 2) + "\" y1=\"" + num(y1) + "\" x2=\"" +
             num(x + 2) + "\" y2=\"" + num(y1) + "\" stroke=\"#555\"/>";
        s += "<line x1=\"" + num(x - 2) + "\" y1=\"" + num(y2) + "\" x2=\"" +
             num(x + 2) + "\" y2=\"" + num(y2) + "\" stroke=\"#555\"/>";
        s += "<circle cx=\"" + num(x) + "\" cy=\"" + num(y) +
             "\" r=\"3.5\" fill=\"#555\"/>";
        if (p.isDefault)
          s += "<rect class=\"default\" x=\"" + num(x - 5) + "\" y=\"" +
               num(y - 5) + "\" width=\"10\" height=\"10\" fill=\"none\" "
               "stroke=\"#1f77b4\" stroke-width=\"2\"/>";
        if (p.isChosen)
          s += "<circle class=\"chosen\" cx=\"" + num(x) + "\" cy=\"" +
               num(y) + "\" r=\"7\" fill=\"none\" stroke=\"#d62728\" "
               "stroke-width=\"2\"/>";
        s += "</g>\n";
      }
    }
    s += "</g>\n";
  }
  s += "</svg>\n";
  return s;
}

} // namespace femc::tune
