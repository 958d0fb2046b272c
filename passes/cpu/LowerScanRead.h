//===- LowerScanRead.h - the CPU lowering of fem.scan_read --------*- C++ -*-===//
#ifndef FEMC_PASSES_CPU_LOWERSCANREAD_H
#define FEMC_PASSES_CPU_LOWERSCANREAD_H

#include "dialect/FEMOps.h"

namespace mlir::fem::cpu {
/// Expands one fem.scan_read into loops and vectors (or reports why not).
LogicalResult lowerScanReadToCPU(ScanReadOp op);
} // namespace mlir::fem::cpu

#endif // FEMC_PASSES_CPU_LOWERSCANREAD_H
