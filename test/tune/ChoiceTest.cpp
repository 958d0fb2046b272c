//===- ChoiceTest.cpp - fem-tune's stable choice and time plan ------------===//
//
// tools/fem-tune/Choice.h with made-up samples: the quartiles, the
// within-noise test (overlapping median +- MAD intervals), the stable choice
// (fastest; a tie keeps the default, else the first in the target's order;
// independent of the contenders' order), and the plan for a budget (the
// standard plan, the quick pass when one launch is long).
//
//===----------------------------------------------------------------------===//
#include "tools/fem-tune/Choice.h"

#include <gtest/gtest.h>

#include <algorithm>

using namespace femc::tune;

namespace {

/// Samples around `ms` off by +-`jitter` (relative), as the fake-time hook
/// makes them.
std::vector<double> around(double ms, double jitter) {
  return {ms, ms * (1 - jitter), ms * (1 + jitter), ms * (1 - jitter / 2),
          ms * (1 + jitter / 2)};
}

Contender contender(double ms, double jitter, bool isDefault, int64_t order) {
  Contender c;
  c.time = measure(around(ms, jitter));
  c.isDefault = isDefault;
  c.order = order;
  return c;
}

} // namespace

TEST(Choice, MeasureQuartilesAndSpread) {
  Measurement m = measure({5, 1, 4, 2, 3});
  EXPECT_DOUBLE_EQ(m.medianMs, 3);
  EXPECT_DOUBLE_EQ(m.q1Ms, 2);
  EXPECT_DOUBLE_EQ(m.q3Ms, 4);
  EXPECT_DOUBLE_EQ(m.spread, 1.0 / 3); // MAD 1 / median 3
  EXPECT_EQ(m.samples, 5);
  Measurement even = measure({1, 2, 3, 4});
  EXPECT_DOUBLE_EQ(even.medianMs, 2.5);
  EXPECT_DOUBLE_EQ(even.q1Ms, 1.75);
  EXPECT_DOUBLE_EQ(even.q3Ms, 3.25);
  Measurement none = measure({});
  EXPECT_EQ(none.samples, 0);
  EXPECT_EQ(none.medianMs, 0);
}

TEST(Choice, WithinNoiseIsOverlappingNoiseIntervals) {
  Measurement a = measure(around(10, 0.03)); // 10 +- 0.15 (MAD)
  EXPECT_TRUE(withinNoise(a, measure(around(10.2, 0.03))));
  EXPECT_FALSE(withinNoise(a, measure(around(11, 0.03))));
  EXPECT_FALSE(withinNoise(a, measure(around(10.2, 0.001))));
}

TEST(Choice, OneSlowRoundIsNotNoise) {
  // Four rounds of a 3 s launch on a loaded machine, one of them slow in
  // each: the medians are 20 % apart, their MADs 2-4 %; the outliers widen
  // the quartiles but not the noise intervals, so the faster one wins.
  Contender def, fast;
  def.time = measure({3200, 3300, 3450, 4650});
  def.isDefault = true;
  fast.time = measure({2700, 2780, 2820, 3900});
  fast.order = 1;
  EXPECT_FALSE(withinNoise(fast.time, def.time));
  StableChoice c = chooseStable({def, fast});
  EXPECT_EQ(c.winner, 1u);
  EXPECT_FALSE(c.tie);
}

TEST(Choice, ClearWinnerIsTheFastest) {
  std::vector<Contender> cs = {contender(10, 0.03, true, 0),
                               contender(8, 0.03, false, 1),
                               contender(9, 0.03, false, 2)};
  StableChoice c = chooseStable(cs);
  EXPECT_EQ(c.winner, 1u);
  EXPECT_EQ(c.fastest, 1u);
  EXPECT_FALSE(c.tie);
  EXPECT_EQ(c.tied, (std::vector<size_t>{1}));
  EXPECT_EQ(c.rule, "fastest");
}

TEST(Choice, TieKeepsTheDefault) {
  // The fastest (order 1) is 1 % faster than the default, inside the 3 %
  // noise: the default is chosen, and the tie recorded.
  std::vector<Contender> cs = {contender(10, 0.03, true, 0),
                               contender(9.9, 0.03, false, 1),
                               contender(12, 0.03, false, 2)};
  StableChoice c = chooseStable(cs);
  EXPECT_EQ(c.fastest, 1u);
  EXPECT_EQ(c.winner, 0u);
  EXPECT_TRUE(c.tie);
  EXPECT_EQ(c.tied, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(c.rule, "tie, the default kept");
}

TEST(Choice, TieWithoutTheDefaultTakesTheTargetsOrder) {
  // Two candidates within the noise of each other, both clearly faster than
  // the default: the first in the target's order wins whichever is faster
  // in this run.
  for (double second : {7.95, 8.05}) {
    std::vector<Contender> cs = {contender(10, 0.03, true, 0),
                                 contender(8, 0.03, false, 5),
                                 contender(second, 0.03, false, 3)};
    StableChoice c = chooseStable(cs);
    EXPECT_EQ(c.winner, 2u) << second;
    EXPECT_TRUE(c.tie);
    EXPECT_EQ(c.rule, "tie, first in the target's order");
    EXPECT_EQ(c.tied, (std::vector<size_t>{2, 1}));
  }
}

TEST(Choice, ChoiceDoesNotDependOnTheContendersOrder) {
  std::vector<Contender> cs = {contender(10, 0.03, true, 0),
                               contender(9.9, 0.03, false, 4),
                               contender(9.95, 0.03, false, 2),
                               contender(7, 0.001, false, 9)};
  StableChoice first = chooseStable(cs);
  int64_t winnerOrder = cs[first.winner].order;
  std::sort(cs.begin(), cs.end(), [](const Contender &a, const Contender &b) {
    return a.order < b.order;
  });
  do {
    StableChoice c = chooseStable(cs);
    EXPECT_EQ(cs[c.winner].order, winnerOrder);
  } while (std::next_permutation(
      cs.begin(), cs.end(), [](const Contender &a, const Contender &b) {
        return a.order < b.order;
      }));
  EXPECT_EQ(winnerOrder, 9); // 7 ms, its IQR apart from the others
}

TEST(Choice, EqualMediansWithoutSpreadTie) {
  std::vector<Contender> cs = {contender(5, 0, false, 2),
                               contender(5, 0, true, 0)};
  StableChoice c = chooseStable(cs);
  EXPECT_EQ(c.winner, 1u);
  EXPECT_EQ(c.fastest, 1u);
  EXPECT_TRUE(c.tie);
}

TEST(Choice, PlanStandardWhenEveryCandidateFits) {
  // 32 candidates of 30 ms with 40 s left: a warm-up, 3 rounds each and 4
  // leaders x 5 rounds need 4.4 s.
  TimingPlan p = planTiming(40000, 30, 32);
  EXPECT_FALSE(p.quickPass);
  EXPECT_GE(p.rounds, 3);
  EXPECT_LE(p.rounds, 50);
  EXPECT_EQ(p.leaders, 4);
  EXPECT_EQ(p.leaderRounds, 5);
}

TEST(Choice, PlanQuickPassWhenOneLaunchIsLong) {
  // T = 16384 here: one launch of about 7 s, 32 candidates, 35 s left. The
  // standard plan would need (31 + 96 + 20) x 7 s = 17 minutes.
  TimingPlan p = planTiming(35000, 7000, 32);
  EXPECT_TRUE(p.quickPass);
  EXPECT_EQ(p.leaders, 2);      // the default and one more
  EXPECT_EQ(p.leaderRounds, 3); // the least that gives quartiles
  EXPECT_NEAR(p.quickShareMs, 35000 * 0.3, 1e-6);
  EXPECT_NE(p.why.find("quick first pass"), std::string::npos) << p.why;
  // More room: more leaders and rounds, within 70 % of what is left.
  TimingPlan q = planTiming(400000, 7000, 32);
  EXPECT_TRUE(q.quickPass);
  EXPECT_EQ(q.leaders, 4);
  EXPECT_EQ(q.leaderRounds, 10); // 280 s / (4 x 7 s)
  // One candidate: nothing to choose between, the standard plan.
  EXPECT_FALSE(planTiming(1000, 7000, 1).quickPass);
}
