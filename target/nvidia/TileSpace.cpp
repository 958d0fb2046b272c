//===- TileSpace.cpp - the NVIDIA targets' tile space ---------------------===//
//
// Part of the femc project.
//
// The NVIDIA lowering (passes/nvidia/SoftmaxKernel.cpp, planSoftmaxKernel)
// chooses the block itself from the dtype and the head widths: 256 threads
// (8 warps) of 32 rows (16 above 128 channels) with 32, 16 or 8 keys per
// shared-memory tile (the largest that fits 48 KiB) on CUDA cores, or 4
// warps of 16 rows with 32 keys on tensor cores; it has one stage (no
// cp.async pipeline) and does not read #fem.tiles. So there is nothing to
// vary yet: the space holds the default tiles only, and fem-tune's
// candidates on these targets are that one. When the lowering takes the
// block rows, key tile, warps or stages from #fem.tiles, their lists go
// here, pruned by checkGpuTiles (NvidiaTarget.h) and the shared-memory
// limit the lowering applies.
//
//===----------------------------------------------------------------------===//
#include "target/nvidia/TileSpace.h"

namespace femc::target::nvidia {

driver::TileSpace nvidiaTileSpace(const priors::PriorInfo &prior,
                                  const priors::Tiles &defaults) {
  (void)prior;
  driver::TileSpace space;
  space.version = 1;
  space.q = {defaults.q};
  space.k = {defaults.k};
  space.vec = {defaults.vec};
  space.note = "the NVIDIA lowering picks its block shape (warps, rows, key "
               "tile; one stage) from the dtype and head widths and does not "
               "read #fem.tiles yet: only the default tiles";
  return space;
}

} // namespace femc::target::nvidia
