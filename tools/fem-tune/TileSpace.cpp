//===- TileSpace.cpp - fem-tune's CPU tile candidates ---------------------===//
#include "tools/fem-tune/TileSpace.h"

#include <algorithm>
#include <cmath>
#include <tuple>

namespace femc::tune {

namespace {

// Query tiles (softmax-like priors): rows of queries per workgroup and keys
// per inner step, multiples of 2 * vec (checkTiles).
constexpr int64_t kQueryTileQ[] = {32, 64, 96, 128, 192, 256, 384, 512};
constexpr int64_t kQueryTileK[] = {32, 64, 128, 256};
// Scans (linear family): chunk rows and channel block, multiples of vec.
constexpr int64_t kScanChunk[] = {16, 32, 64, 128, 256};
constexpr int64_t kScanBlock[] = {8, 16, 32, 64, 128};
constexpr int64_t kVectorWidths[] = {4, 8, 16};

int64_t roundUp(int64_t value, int64_t quantum) {
  return (value + quantum - 1) / quantum * quantum;
}

double distance(const femc::priors::Tiles &a, const femc::priors::Tiles &b) {
  auto l = [](int64_t x, int64_t y) {
    return std::fabs(std::log2(static_cast<double>(x) / static_cast<double>(y)));
  };
  return l(a.q, b.q) + l(a.k, b.k) + l(a.vec, b.vec);
}

} // namespace

std::vector<Candidate>
cpuCandidates(const femc::priors::PriorInfo &prior, int64_t maxVec,
              const femc::priors::Tiles &defaults, bool causal,
              const std::map<std::string, int64_t> &extents,
              const TileCheck &check) {
  using femc::priors::GridKind;
  bool queryTiles = prior.grid == GridKind::QueryTiles;
  auto extent = [&](const char *name) -> int64_t {
    auto it = extents.find(name);
    return it == extents.end() ? -1 : it->second;
  };
  // What q and k tile: queries and keys, or chunk rows and value channels.
  const char *qExtent = "T";
  const char *kExtent = queryTiles ? (causal || extent("S") < 0 ? "T" : "S")
                                   : "dv";
  std::vector<Candidate> out;
  auto consider = [&](femc::priors::Tiles t, bool isDefault) {
    Candidate c;
    c.tiles = t;
    c.isDefault = isDefault;
    if (auto why = check ? check(prior, t)
                         : femc::priors::checkTiles(prior, t)) {
      c.pruned = "illegal: " + *why;
    } else if (!isDefault) {
      int64_t quantum = queryTiles ? 2 * t.vec : t.vec;
      int64_t qn = extent(qExtent), kn = extent(kExtent);
      if (qn >= 0 && t.q > roundUp(std::max<int64_t>(qn, 1), quantum))
        c.pruned = "tile-q " + std::to_string(t.q) + " is larger than " +
                   qExtent + " = " + std::to_string(qn) + " (rounded up to a multiple "
                   "of " + std::to_string(quantum) + ")";
      else if (kn >= 0 && t.k > roundUp(std::max<int64_t>(kn, 1), quantum))
        c.pruned = "tile-k " + std::to_string(t.k) + " is larger than " +
                   kExtent + " = " + std::to_string(kn) + " (rounded up to a multiple "
                   "of " + std::to_string(quantum) + ")";
    }
    out.push_back(c);
  };
  consider(defaults, true);
  std::vector<femc::priors::Tiles> others;
  for (int64_t vec : kVectorWidths) {
    if (vec > maxVec)
      continue;
    if (queryTiles) {
      for (int64_t q : kQueryTileQ)
        for (int64_t k : kQueryTileK)
          others.push_back({q, k, vec});
    } else {
      for (int64_t q : kScanChunk)
        for (int64_t k : kScanBlock)
          others.push_back({q, k, vec});
    }
  }
  std::sort(others.begin(), others.end(),
                   [&](const femc::priors::Tiles &a,
                       const femc::priors::Tiles &b) {
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

} // namespace femc::tune
