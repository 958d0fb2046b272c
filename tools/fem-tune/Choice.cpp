//===- Choice.cpp - fem-tune's statistics, stable choice and time plan ----===//
#include "tools/fem-tune/Choice.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace femc::tune {

namespace {

/// The p-quantile of sorted `v` (linear interpolation, as numpy's default).
double quantile(const std::vector<double> &v, double p) {
  if (v.empty())
    return 0;
  double pos = p * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, v.size() - 1);
  double frac = pos - static_cast<double>(lo);
  return v[lo] + (v[hi] - v[lo]) * frac;
}

} // namespace

Measurement measure(std::vector<double> samples) {
  Measurement m;
  m.samples = static_cast<int64_t>(samples.size());
  if (samples.empty())
    return m;
  std::sort(samples.begin(), samples.end());
  m.medianMs = quantile(samples, 0.5);
  m.q1Ms = quantile(samples, 0.25);
  m.q3Ms = quantile(samples, 0.75);
  std::vector<double> dev;
  for (double s : samples)
    dev.push_back(std::fabs(s - m.medianMs));
  std::sort(dev.begin(), dev.end());
  double mad = quantile(dev, 0.5);
  m.spread = m.medianMs > 0 ? mad / m.medianMs : 0;
  return m;
}

bool withinNoise(const Measurement &fastest, const Measurement &other) {
  // Each measurement's noise interval is median +- MAD: for normally
  // distributed samples the interquartile range, but one slow outlier among
  // the few rounds a long launch allows does not widen it.
  double a = fastest.medianMs * fastest.spread,
         b = other.medianMs * other.spread;
  return other.medianMs - b <= fastest.medianMs + a &&
         fastest.medianMs - a <= other.medianMs + b;
}

StableChoice chooseStable(const std::vector<Contender> &contenders) {
  StableChoice c;
  if (contenders.empty())
    return c;
  // The fastest median; equal medians go to the fixed order.
  auto fixedBefore = [&](size_t a, size_t b) {
    if (contenders[a].isDefault != contenders[b].isDefault)
      return contenders[a].isDefault;
    if (contenders[a].order != contenders[b].order)
      return contenders[a].order < contenders[b].order;
    return a < b;
  };
  for (size_t i = 1; i < contenders.size(); ++i) {
    double a = contenders[i].time.medianMs,
           b = contenders[c.fastest].time.medianMs;
    if (a < b || (a == b && fixedBefore(i, c.fastest)))
      c.fastest = i;
  }
  const Measurement &best = contenders[c.fastest].time;
  for (size_t i = 0; i < contenders.size(); ++i)
    if (i == c.fastest || withinNoise(best, contenders[i].time))
      c.tied.push_back(i);
  std::sort(c.tied.begin(), c.tied.end(), fixedBefore);
  c.winner = c.tied.front();
  c.tie = c.tied.size() > 1;
  if (!c.tie)
    c.rule = "fastest";
  else if (contenders[c.winner].isDefault)
    c.rule = "tie, the default kept";
  else
    c.rule = "tie, first in the target's order";
  return c;
}

TimingPlan planTiming(double leftMs, double launchMs, int64_t candidates) {
  TimingPlan plan;
  leftMs = std::max(0.0, leftMs);
  launchMs = std::max(launchMs, 1e-6);
  int64_t n = std::max<int64_t>(candidates, 1);
  int64_t leaders = std::min<int64_t>(4, n);
  // The standard plan's least work: a warm-up and 3 rounds of every
  // candidate (the default's warm-up is the launch already measured), then
  // 5 rounds of the leaders.
  double standard = launchMs * static_cast<double>((n - 1) + 3 * n +
                                                   5 * leaders);
  char buf[320];
  if (standard <= leftMs || n == 1) {
    plan.rounds = std::clamp<int64_t>(
        static_cast<int64_t>(leftMs * 0.6 / (launchMs * n)), 3, 50);
    plan.leaders = leaders;
    plan.leaderRounds = 5;
    std::snprintf(buf, sizeof buf,
                  "one launch takes %.1f ms: every candidate is timed at the "
                  "tuned shape (at least %.1f s for %lld candidate%s)",
                  launchMs, standard / 1000, static_cast<long long>(n),
                  n == 1 ? "" : "s");
    plan.why = buf;
    return plan;
  }
  plan.quickPass = true;
  // The leaders at the tuned shape: 2 to 4 contenders, 3 to 100 rounds,
  // in 70 % of what is left; the quick pass gets the rest.
  double share = leftMs * 0.7;
  plan.leaders = std::clamp<int64_t>(
      static_cast<int64_t>(share / (3 * launchMs)), 2, std::min<int64_t>(4, n));
  plan.leaderRounds = std::clamp<int64_t>(
      static_cast<int64_t>(share / (static_cast<double>(plan.leaders) *
                                    launchMs)),
      3, 100);
  plan.quickShareMs = leftMs - share;
  std::snprintf(buf, sizeof buf,
                "one launch takes %.1f ms: timing all %lld candidates at the "
                "tuned shape needs at least %.1f s of the %.1f s left; a "
                "quick first pass at a shorter length ranks them and %lld "
                "contenders (the default included) get %lld rounds at the "
                "tuned shape",
                launchMs, static_cast<long long>(n), standard / 1000,
                leftMs / 1000, static_cast<long long>(plan.leaders),
                static_cast<long long>(plan.leaderRounds));
  plan.why = buf;
  return plan;
}

} // namespace femc::tune
