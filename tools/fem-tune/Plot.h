//===- Plot.h - fem-tune's SVG plot of a tuning run -------------*- C++ -*-===//
//
// `fem-tune --plot FILE.svg`: time against each tile parameter of the run,
// one panel per parameter (q, k, vec, ...), with the spread as error bars
// and the default and the chosen tiles marked. Plain C++ (no LLVM, no
// Python), deterministic: the same points give the same bytes.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_TOOLS_FEM_TUNE_PLOT_H
#define FEMC_TOOLS_FEM_TUNE_PLOT_H

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace femc::tune {

struct PlotPoint {
  std::map<std::string, int64_t> tiles;
  double medianMs = 0;
  /// Relative spread (MAD / median): the bar spans median * (1 +- spread).
  double spread = 0;
  bool isDefault = false, isChosen = false;
};

struct PlotData {
  /// First line of the title (e.g. the kernel, bucket and target).
  std::string title;
  /// Second line (e.g. how the times were measured).
  std::string subtitle;
  std::vector<PlotPoint> points;
};

/// The SVG document. Parameters are the union of the points' tile names, in
/// the order q, k, vec, then any others by name; each panel places the
/// parameter's distinct values at equal steps (ascending) and shares the
/// time axis (ms) with the others. Points with a non-positive or non-finite
/// time are left out.
std::string plotSvg(const PlotData &data);

} // namespace femc::tune

#endif // FEMC_TOOLS_FEM_TUNE_PLOT_H
