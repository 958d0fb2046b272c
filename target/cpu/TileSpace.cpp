//===- TileSpace.cpp - the CPU targets' tile space ------------------------===//
//
// Part of the femc project.
//
// The one place that declares what fem-tune varies on the CPU targets
// (host, x86-64-v3, x86-64-v4 and named CPUs). Legality is not decided
// here: tileCandidates (target/TileSpace.cpp) sends every candidate through
// the target's checkTiles, femc::priors::checkTiles of dialect/Priors.h, the
// rule the fem.mixer verifier and fem-tile enforce.
//
//===----------------------------------------------------------------------===//
#include "target/cpu/TileSpace.h"

#include <algorithm>
#include <iterator>

#include <unistd.h>

namespace femc::target::cpu {

namespace {

// Query tiles (softmax-like priors): rows of queries per workgroup and keys
// per inner step, multiples of 2 * vec.
constexpr int64_t kQueryTileQ[] = {32, 64, 96, 128, 192, 256, 384, 512};
constexpr int64_t kQueryTileK[] = {32, 64, 128, 256};
// Scans (linear family): chunk rows and channel block, multiples of vec.
constexpr int64_t kScanChunk[] = {16, 32, 64, 128, 256};
constexpr int64_t kScanBlock[] = {8, 16, 32, 64, 128};
constexpr int64_t kVectorWidths[] = {4, 8, 16};

/// Version 2: thread counts joined the space (version 1: q, k, vec).
constexpr int64_t kCpuTileSpaceVersion = 2;

} // namespace

int64_t onlineCpus() {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? n : 1;
}

driver::TileSpace cpuTileSpace(const priors::PriorInfo &prior, int64_t maxVec,
                               int64_t cpus) {
  driver::TileSpace space;
  space.version = kCpuTileSpaceVersion;
  bool queryTiles = prior.grid == priors::GridKind::QueryTiles;
  if (queryTiles) {
    space.q.assign(std::begin(kQueryTileQ), std::end(kQueryTileQ));
    space.k.assign(std::begin(kQueryTileK), std::end(kQueryTileK));
  } else {
    space.q.assign(std::begin(kScanChunk), std::end(kScanChunk));
    space.k.assign(std::begin(kScanBlock), std::end(kScanBlock));
  }
  for (int64_t vec : kVectorWidths)
    if (vec <= maxVec)
      space.vec.push_back(vec);
  // All CPUs first (the runtime's default), then halved down to 1.
  for (int64_t t = std::max<int64_t>(cpus, 1);; t /= 2) {
    space.threads.push_back(t);
    if (t == 1)
      break;
  }
  space.note = queryTiles
                   ? "CPU query tiles: q rows per workgroup, k keys per step, "
                     "vec lanes up to the target's widest vector"
                   : "CPU scans: q rows per chunk, k value channels per "
                     "block, vec lanes up to the target's widest vector";
  return space;
}

} // namespace femc::target::cpu
