//===- LowerScanRead.h - the CPU emitters' entry points -------------*- C++ -*-===//
#ifndef FEMC_PASSES_CPU_LOWERSCANREAD_H
#define FEMC_PASSES_CPU_LOWERSCANREAD_H

#include "dialect/FEMOps.h"

namespace mlir::fem::cpu {
/// Expands one fem.scan_read into loops and vectors (or reports why not).
LogicalResult lowerScanReadToCPU(ScanReadOp op);
/// Expands one fem.tile_read (softmax) into loops and vectors.
LogicalResult lowerTileReadToCPU(TileReadOp op);
} // namespace mlir::fem::cpu

#endif // FEMC_PASSES_CPU_LOWERSCANREAD_H
