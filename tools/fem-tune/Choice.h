//===- Choice.h - fem-tune's statistics, stable choice and time plan -*- C++ -*-===//
//
// The decisions fem-tune makes from measured times, as pure functions so the
// rules are tested with made-up samples (test/tune/ChoiceTest.cpp):
//
//  - measure: median, spread (MAD / median) and quartiles of the
//    samples of one candidate;
//  - chooseStable: the winner among candidates measured side by side, stable
//    from run to run: every candidate whose noise interval (median +- MAD)
//    overlaps the fastest one's is a tie within the noise, and among a tie the choice is
//    fixed (the target's default, else the first in the target's order);
//  - planTiming: how a timing budget is spent once one launch of the default
//    at the tuned shape has been measured (docs/tuning.md, "Budget").
//
// Plain C++ without LLVM (part of femtune).
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_TOOLS_FEM_TUNE_CHOICE_H
#define FEMC_TOOLS_FEM_TUNE_CHOICE_H

#include "tools/fem-tune/TuningDb.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace femc::tune {

/// Median, spread (median absolute deviation / median) and the quartiles
/// (linear interpolation between order statistics) of `samples`.
Measurement measure(std::vector<double> samples);

/// One candidate of a side-by-side measurement.
struct Contender {
  Measurement time;
  /// The target's default (preferred among a tie).
  bool isDefault = false;
  /// Position in the target's fixed candidate order (lower first): the
  /// tie-break after the default.
  int64_t order = 0;
};

struct StableChoice {
  size_t winner = 0;  ///< index of the chosen contender
  size_t fastest = 0; ///< index of the lowest median
  /// The contenders within the noise of the fastest (its own index
  /// included), in the fixed order (default first, then by `order`).
  std::vector<size_t> tied;
  /// More than one contender was within the noise: the winner was chosen by
  /// the fixed order, not by its time.
  bool tie = false;
  /// "fastest", "tie, the default kept" or "tie, first in the target's
  /// order".
  std::string rule;
};

/// Whether `other` is within the noise of `fastest`: their noise intervals
/// median +- MAD (the robust interquartile range: for normal samples the
/// same as the quartiles, but not widened by one outlier) overlap.
bool withinNoise(const Measurement &fastest, const Measurement &other);

/// The stable choice among `contenders` (not empty): the fastest median, or,
/// when others are within its noise, the default if it is among them, else
/// the one first in the target's order. The same samples give the same
/// choice, and a reordering of equal-noise candidates does not change it.
StableChoice chooseStable(const std::vector<Contender> &contenders);

/// How the timing budget is spent (planTiming).
struct TimingPlan {
  /// false: every candidate at the tuned shape (a warm-up, `rounds`
  /// interleaved rounds, then `leaders` contenders `leaderRounds` more).
  /// true: launches at the tuned shape are too long for that; candidates are
  /// ranked by a quick first pass at a shorter length and only `leaders`
  /// contenders (the default included) are timed at the tuned shape.
  bool quickPass = false;
  int64_t rounds = 0;
  int64_t leaders = 0, leaderRounds = 0;
  /// Milliseconds the quick pass may take (quickPass only).
  double quickShareMs = 0;
  /// Why this plan, for the log ("one launch takes 7012 ms: ...").
  std::string why;
};

/// The plan for `candidates` correct candidates (the default included) when
/// `leftMs` of the budget remain and one launch of the default at the tuned
/// shape took `launchMs`. The standard plan needs, per candidate, a warm-up
/// and at least 3 rounds, and 4 leaders at least 5 more rounds; when that
/// does not fit, the quick-pass plan keeps 2 to 4 leaders and 3 to 100
/// rounds for them in 70 % of what is left, the rest for the quick pass.
TimingPlan planTiming(double leftMs, double launchMs, int64_t candidates);

} // namespace femc::tune

#endif // FEMC_TOOLS_FEM_TUNE_CHOICE_H
