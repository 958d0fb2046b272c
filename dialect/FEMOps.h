//===- FEMOps.h - fem operations ----------------------------------*- C++ -*-===//
#ifndef FEMC_DIALECT_FEMOPS_H
#define FEMC_DIALECT_FEMOPS_H

#include "dialect/FEMDialect.h"
#include "dialect/FEMPriors.h"
#include "dialect/StrayAttributes.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#define GET_OP_CLASSES
#include "dialect/FEMOps.h.inc"

namespace mlir::fem {
/// Position of the time axis (T or S) of a rank-4 q/k/v/lam/gate/out operand.
inline unsigned timeAxis(Layout layout) {
  return layout == Layout::bthd ? 1 : 2;
}
/// Position of the head axis (H or Hkv) of a rank-4 operand.
inline unsigned headAxis(Layout layout) {
  return layout == Layout::bthd ? 2 : 1;
}
/// True for priors whose read is always causal, whatever the `causal` flag
/// says (a quirk of the reference implementation, see docs/semantics.md).
inline bool isAlwaysCausal(PriorKind kind) {
  return getPriorInfo(kind).alwaysCausal;
}
} // namespace mlir::fem

#endif // FEMC_DIALECT_FEMOPS_H
