//===- PlotTest.cpp - fem-tune's SVG plot ---------------------------------===//
#include "tools/fem-tune/Plot.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>

using namespace femc::tune;

namespace {

size_t count(const std::string &s, const std::string &what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos;
       at = s.find(what, at + 1))
    ++n;
  return n;
}

PlotData sample() {
  PlotData d;
  d.title = "fem-tune: softmax_fem, B=1,T=4096, host";
  d.subtitle = "median of 5 rounds";
  d.points.push_back({{{"q", 192}, {"k", 64}, {"vec", 16}}, 2.0, 0.05, true,
                      false});
  d.points.push_back({{{"q", 64}, {"k", 64}, {"vec", 16}}, 1.5, 0.10, false,
                      true});
  d.points.push_back({{{"q", 512}, {"k", 32}, {"vec", 8}}, 3.0, 0.0, false,
                      false});
  return d;
}

/// The y coordinate of the `class` marker (default or chosen).
double markerY(const std::string &svg, const std::string &cls) {
  std::smatch m;
  std::regex re(cls == "chosen"
                    ? "class=\"chosen\" cx=\"[0-9.]+\" cy=\"([0-9.]+)\""
                    : "class=\"default\" x=\"[0-9.]+\" y=\"([0-9.]+)\"");
  EXPECT_TRUE(std::regex_search(svg, m, re)) << cls;
  return m.empty() ? -1 : std::stod(m[1]) + (cls == "default" ? 5 : 0);
}

TEST(Plot, OnePanelPerParameterWithLabelsAndMarkers) {
  std::string svg = plotSvg(sample());
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("</svg>\n"), std::string::npos);
  EXPECT_EQ(count(svg, "class=\"panel\""), 3u);
  EXPECT_NE(svg.find("data-parameter=\"q\""), std::string::npos);
  EXPECT_NE(svg.find("data-parameter=\"vec\""), std::string::npos);
  EXPECT_NE(svg.find("time per launch (ms)"), std::string::npos);
  EXPECT_NE(svg.find("tile q (query rows"), std::string::npos);
  // Every point in every panel: 3 points x 3 panels; one default and one
  // chosen marker per panel.
  EXPECT_EQ(count(svg, "class=\"point\""), 9u);
  EXPECT_EQ(count(svg, "class=\"default\""), 3u);
  EXPECT_EQ(count(svg, "class=\"chosen\""), 3u);
  EXPECT_NE(svg.find("q=64 k=64 vec=16: 1.5000 ms, spread 10.0% (chosen)"),
            std::string::npos);
  // Faster is lower on the page... so the chosen (1.5 ms) lies below the
  // default (2.0 ms) in time, i.e. has a larger y.
  EXPECT_GT(markerY(svg, "chosen"), markerY(svg, "default"));
}

TEST(Plot, Deterministic) { EXPECT_EQ(plotSvg(sample()), plotSvg(sample())); }

TEST(Plot, EscapesTextAndSkipsBadTimes) {
  PlotData d = sample();
  d.title = "a<b & \"c\"";
  d.points.push_back({{{"q", 32}, {"k", 32}, {"vec", 4}}, 0.0, 0.0, false,
                      false});
  std::string svg = plotSvg(d);
  EXPECT_NE(svg.find("a&lt;b &amp; &quot;c&quot;"), std::string::npos);
  EXPECT_EQ(svg.find("a<b"), std::string::npos);
  // The 0 ms point is left out: still 3 points per panel.
  EXPECT_EQ(count(svg, "class=\"point\""), 9u);
}

TEST(Plot, NothingTimed) {
  PlotData d;
  d.title = "t";
  std::string svg = plotSvg(d);
  EXPECT_NE(svg.find("no candidate was timed"), std::string::npos);
  EXPECT_EQ(count(svg, "class=\"point\""), 0u);
}

} // namespace
