//===- TileSpace.h - fem-tune's CPU tile candidates -------------*- C++ -*-===//
//
// The candidate values fem-tune tries on the CPU. Legality is not decided
// here: every candidate goes through femc::priors::checkTiles
// (dialect/Priors.h), the rule the #fem.tiles verifier and fem-tile enforce,
// so an illegal candidate is pruned with the verifier's own message.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_TOOLS_FEM_TUNE_TILESPACE_H
#define FEMC_TOOLS_FEM_TUNE_TILESPACE_H

#include "dialect/Priors.h"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace femc::tune {

/// Bumped whenever the candidate lists change. Entries record the version
/// they were tuned with; older entries stay valid (their tiles are still
/// legal tiles), so adding candidates does not throw the database away.
constexpr int64_t kTileSpaceVersion = 1;

struct Candidate {
  femc::priors::Tiles tiles;
  bool isDefault = false;
  /// Empty when the candidate is kept; otherwise why it was pruned.
  std::string pruned;
};

/// The CPU candidates for `prior` on a target whose widest vector is
/// `maxVec` lanes, for the problem `extents` (T, S, dv, ...). The default
/// tiles `defaults` come first and are always kept (they are the yardstick);
/// the others follow by distance from the default. Candidates that break
/// the verifier's rules, or whose tile is larger than the extent it tiles
/// (rounded up to the tile quantum), are returned with `pruned` set.
/// A legality rule: why `tiles` cannot be used for `prior`, or nothing.
using TileCheck = std::function<std::optional<std::string>(
    const femc::priors::PriorInfo &prior, const femc::priors::Tiles &tiles)>;

/// `check` is the target's rule (fem-tune passes driver::Target::checkTiles,
/// which adds a target's own limits to the prior table's); empty: the prior
/// table's rule, femc::priors::checkTiles.
std::vector<Candidate>
cpuCandidates(const femc::priors::PriorInfo &prior, int64_t maxVec,
              const femc::priors::Tiles &defaults, bool causal,
              const std::map<std::string, int64_t> &extents,
              const TileCheck &check = {});

} // namespace femc::tune

#endif // FEMC_TOOLS_FEM_TUNE_TILESPACE_H
