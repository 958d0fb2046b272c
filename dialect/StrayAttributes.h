//===- StrayAttributes.h - fem ops refuse unknown attributes -----*- C++ -*-===//
//
// The NoStrayAttributes trait of every fem op (FEM_Op in FEMDialect.td): an
// attribute that is neither one of the op's own (its ODS attributes) nor
// carries a dialect prefix ("fem.tiles", "llvm.x": discardable attributes
// that passes attach) is refused at its op's location. MLIR keeps any
// unknown name as a discardable attribute, so a misspelt `capp = 2.0` on a
// fem.mixer compiled with the default cap and no word.
//
//===----------------------------------------------------------------------===//

#ifndef FEMC_DIALECT_STRAYATTRIBUTES_H
#define FEMC_DIALECT_STRAYATTRIBUTES_H

#include "mlir/IR/OpDefinition.h"

namespace mlir::fem {

/// Checks `op`'s discardable attributes against `ownNames` (its inherent
/// attribute names); an error naming the stray attribute and the op's own.
LogicalResult verifyNoStrayAttributes(Operation *op,
                                      ArrayRef<StringRef> ownNames);

template <typename ConcreteType>
class NoStrayAttributes
    : public OpTrait::TraitBase<ConcreteType, NoStrayAttributes> {
public:
  static LogicalResult verifyTrait(Operation *op) {
    return verifyNoStrayAttributes(op, ConcreteType::getAttributeNames());
  }
};

} // namespace mlir::fem

#endif // FEMC_DIALECT_STRAYATTRIBUTES_H
