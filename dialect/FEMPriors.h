//===- FEMPriors.h - the prior table seen from MLIR ---------------*- C++ -*-===//
//
// Bridges dialect/Priors.h (plain C++) to the dialect's PriorKind, Layout and
// TilesAttr, and offers the table-driven operand check shared by the ops.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_DIALECT_FEMPRIORS_H
#define FEMC_DIALECT_FEMPRIORS_H

#include "dialect/FEMDialect.h"
#include "dialect/Priors.h"

#include "mlir/IR/Operation.h"

namespace mlir::fem {

inline const femc::priors::PriorInfo &getPriorInfo(PriorKind kind) {
  return femc::priors::priorInfo(static_cast<int>(kind));
}

inline femc::priors::Tiles toTiles(TilesAttr tiles) {
  return {tiles.getQ(), tiles.getK(), tiles.getVec()};
}

/// One named operand of a read (null when absent).
struct NamedOperand {
  Value value;
  StringRef name;
};

/// Checks a read's operands against the prior table: presence (required and
/// forbidden operands), one element type for the float operands, every rank
/// and every named extent (B, T, S, H, Hkv, dk, dv, E, N) bound across
/// operands, and the relations E = H * dv, Hkv | H and (aft) dk | dv.
/// Messages name the operand, what was expected and what was found.
LogicalResult verifyReadOperands(Operation *op, PriorKind kind, Layout layout,
                                 bool causal,
                                 ArrayRef<NamedOperand> operands);

} // namespace mlir::fem

#endif // FEMC_DIALECT_FEMPRIORS_H
