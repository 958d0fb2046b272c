//===- StrayAttributes.cpp - fem ops refuse unknown attributes -------------===//

#include "dialect/StrayAttributes.h"

#include "mlir/IR/Operation.h"

#include <string>

using namespace mlir;

LogicalResult mlir::fem::verifyNoStrayAttributes(Operation *op,
                                                 ArrayRef<StringRef> ownNames) {
  for (NamedAttribute attr : op->getDiscardableAttrs()) {
    StringRef name = attr.getName().strref();
    // "dialect.name": a discardable attribute by MLIR's convention (e.g. the
    // fem.tiles that fem-expand-mixer puts on fem.prior).
    if (name.contains('.') || llvm::is_contained(ownNames, name))
      continue;
    std::string own;
    for (StringRef n : ownNames)
      if (!n.starts_with("operandSegmentSizes") &&
          !n.starts_with("resultSegmentSizes"))
        own += (own.empty() ? "" : ", ") + n.str();
    return op->emitOpError()
           << "has no attribute '" << name << "' ("
           << (own.empty() ? std::string("it takes none")
                           : "its attributes: " + own)
           << "); an attribute of another dialect needs its prefix, e.g. "
              "'fem."
           << name << "'";
  }
  return success();
}
