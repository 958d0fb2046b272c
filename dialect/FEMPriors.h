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

#include <optional>
#include <string>

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

/// dk >= 1 for the priors that read keys (their scores are dot products over
/// dk channels, by default scaled by 1/sqrt(dk)) and N >= 1 for ssm (the
/// state size of A, Bs and Cs), as the reference requires: a zero extent
/// there made the kernels write NaN (softmax, gla) or an answer the
/// reference does not define. `dk` and `n` are static extents or
/// ShapedType::kDynamic (not checked); `dkSource`, `nSource` name the
/// operand that fixed them.
LogicalResult checkPositiveExtents(Operation *op,
                                   const femc::priors::PriorInfo &info,
                                   int64_t dk, StringRef dkSource, int64_t n,
                                   StringRef nSource);

/// Refuses a shaped value (`what`, e.g. "operand 'q'") whose static extents
/// alone hold more bytes than a 64-bit byte count can (2^63 - 1): no launch
/// could pass it and the lowering's index arithmetic would wrap. Dynamic
/// extents are not counted; a zero extent makes it empty.
LogicalResult checkStaticSize(Operation *op, StringRef what, Type type);

/// The message part "H * dv = 8 * 64 = 512", or "H * dv = 8 * 2^62, which
/// overflows 64 bits" when the product does not fit in int64; `product` is
/// set when it fits.
std::string productText(StringRef names, int64_t a, int64_t b,
                        std::optional<int64_t> &product);

} // namespace mlir::fem

#endif // FEMC_DIALECT_FEMPRIORS_H
