//===- TileSpace.cpp - a target's tile space as fem-tune's candidates -----===//
//
// Part of the femc project.
//
// The rules every target shares: the candidate set is the product of the
// target's lists (Target::tileSpace, declared per family in
// target/<family>/TileSpace.cpp), legality is the target's checkTiles (the
// rule the #fem.tiles verifier and fem-tile apply, plus the target's own
// limits), and tiles larger than the shape are pruned before compiling.
//
//===----------------------------------------------------------------------===//
#include "driver/Target.h"

#include <algorithm>
#include <cmath>
#include <tuple>

namespace femc::driver {

TileSpace Target::tileSpace(const priors::PriorInfo &prior) const {
  TileSpace space;
  priors::Tiles d = defaultTiles(prior);
  space.q = {d.q};
  space.k = {d.k};
  space.vec = {d.vec};
  space.note = "target '" + name().str() + "' declares no tile space: only "
               "its default tiles";
  return space;
}

namespace {

int64_t roundUp(int64_t value, int64_t quantum) {
  return (value + quantum - 1) / quantum * quantum;
}

double distance(const priors::Tiles &a, const priors::Tiles &b) {
  auto l = [](int64_t x, int64_t y) {
    return std::fabs(std::log2(static_cast<double>(x) / static_cast<double>(y)));
  };
  return l(a.q, b.q) + l(a.k, b.k) + l(a.vec, b.vec);
}

} // namespace

std::vector<TileCandidate>
tileCandidates(const Target &target, const priors::PriorInfo &prior,
               const priors::Tiles &defaults, bool causal,
               const std::map<std::string, int64_t> &extents) {
  bool queryTiles = prior.grid == priors::GridKind::QueryTiles;
  auto extent = [&](const char *name) -> int64_t {
    auto it = extents.find(name);
    return it == extents.end() ? -1 : it->second;
  };
  // What q and k tile: queries and keys, or chunk rows and value channels.
  const char *qExtent = "T";
  const char *kExtent = queryTiles ? (causal || extent("S") < 0 ? "T" : "S")
                                   : "dv";
  std::vector<TileCandidate> out;
  auto consider = [&](priors::Tiles t, bool isDefault) {
    TileCandidate c;
    c.tiles = t;
    c.isDefault = isDefault;
    if (auto why = target.checkTiles(prior, t)) {
      c.pruned = "illegal: " + *why;
    } else if (!isDefault) {
      int64_t quantum = queryTiles ? 2 * t.vec : t.vec;
      int64_t qn = extent(qExtent), kn = extent(kExtent);
      if (qn >= 0 && t.q > roundUp(std::max<int64_t>(qn, 1), quantum))
        c.pruned = "tile-q " + std::to_string(t.q) + " is larger than " +
                   qExtent + " = " + std::to_string(qn) +
                   " (rounded up to a multiple of " + std::to_string(quantum) +
                   ")";
      else if (kn >= 0 && t.k > roundUp(std::max<int64_t>(kn, 1), quantum))
        c.pruned = "tile-k " + std::to_string(t.k) + " is larger than " +
                   kExtent + " = " + std::to_string(kn) +
                   " (rounded up to a multiple of " + std::to_string(quantum) +
                   ")";
    }
    out.push_back(c);
  };
  consider(defaults, true);
  TileSpace space = target.tileSpace(prior);
  std::vector<priors::Tiles> others;
  for (int64_t vec : space.vec)
    for (int64_t q : space.q)
      for (int64_t k : space.k)
        others.push_back({q, k, vec});
  std::sort(others.begin(), others.end(),
            [&](const priors::Tiles &a, const priors::Tiles &b) {
              double da = distance(a, defaults), db = distance(b, defaults);
              if (da != db)
                return da < db;
              return std::tie(a.vec, a.q, a.k) < std::tie(b.vec, b.q, b.k);
            });
  for (const auto &t : others)
    if (t.q != defaults.q || t.k != defaults.k || t.vec != defaults.vec)
      consider(t, false);
  return out;
}

} // namespace femc::driver
