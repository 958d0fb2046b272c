//===- FEMDialect.cpp - The fem dialect ------------------------------------===//
#include "dialect/FEMDialect.h"
#include "dialect/FEMOps.h"
#include "dialect/LayerConfig.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::fem;

#include "dialect/FEMDialect.cpp.inc"
#include "dialect/FEMEnums.cpp.inc"
#define GET_ATTRDEF_CLASSES
#include "dialect/FEMAttrs.cpp.inc"
#define GET_TYPEDEF_CLASSES
#include "dialect/FEMTypes.cpp.inc"

void FEMDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialect/FEMOps.cpp.inc"
      >();
  addTypes<
#define GET_TYPEDEF_LIST
#include "dialect/FEMTypes.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialect/FEMAttrs.cpp.inc"
      >();
}

/// Discardable attributes named fem.*: `fem.layer` is checked here; the
/// others (fem.kernel, fem.grid, ...) by the passes that read them.
LogicalResult FEMDialect::verifyOperationAttribute(Operation *op,
                                                   NamedAttribute attribute) {
  if (attribute.getName() == kLayerAttrName)
    return verifyLayerAttribute(op, attribute.getValue());
  return success();
}

//===----------------------------------------------------------------------===//
// PriorType
//===----------------------------------------------------------------------===//

Type PriorType::parse(AsmParser &parser) {
  StringRef kindName;
  SmallVector<int64_t, 4> shape;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseLess() || parser.parseKeyword(&kindName))
    return {};
  std::optional<PriorKind> kind = symbolizePriorKind(kindName);
  if (!kind) {
    parser.emitError(loc) << "unknown prior kind '" << kindName
                          << "', expected one of softmax, linear, gla, aft, "
                             "ssm";
    return {};
  }
  if (parser.parseComma() ||
      parser.parseDimensionList(shape, /*allowDynamic=*/true,
                                /*withTrailingX=*/false) ||
      parser.parseGreater())
    return {};
  return parser.getChecked<PriorType>(loc, parser.getContext(), *kind, shape);
}

void PriorType::print(AsmPrinter &printer) const {
  printer << "<" << stringifyPriorKind(getKind()) << ", ";
  llvm::interleave(
      getShape(), printer.getStream(),
      [&](int64_t d) {
        if (ShapedType::isDynamic(d))
          printer << "?";
        else
          printer << d;
      },
      "x");
  printer << ">";
}

LogicalResult PriorType::verify(function_ref<InFlightDiagnostic()> emitError,
                                PriorKind kind, ArrayRef<int64_t> shape) {
  if (shape.size() != 4)
    return emitError() << "!fem.prior expects 4 extents (B x H x T x S), found "
                       << shape.size();
  for (int64_t d : shape)
    if (!ShapedType::isDynamic(d) && d < 0)
      return emitError() << "!fem.prior extents must be non-negative or '?', "
                            "found "
                         << d;
  return success();
}

//===----------------------------------------------------------------------===//
// TilesAttr
//===----------------------------------------------------------------------===//

LogicalResult TilesAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                int64_t q, int64_t k, int64_t vec) {
  if (q <= 0 || q > 1024)
    return emitError() << "#fem.tiles: q (query rows per workgroup) must be in "
                          "[1, 1024], found "
                       << q;
  if (k <= 0 || k > 1024)
    return emitError() << "#fem.tiles: k (keys per step) must be in [1, 1024], "
                          "found "
                       << k;
  if (vec != 0 && vec != 4 && vec != 8 && vec != 16)
    return emitError() << "#fem.tiles: vec must be 0 (target default), 4, 8 "
                          "or 16, found "
                       << vec;
  if (vec != 0 && k % vec != 0)
    return emitError() << "#fem.tiles: k must be a multiple of vec, found k = "
                       << k << " and vec = " << vec;
  return success();
}
