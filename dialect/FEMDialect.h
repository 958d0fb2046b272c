//===- FEMDialect.h - The fem dialect -----------------------------*- C++ -*-===//
#ifndef FEMC_DIALECT_FEMDIALECT_H
#define FEMC_DIALECT_FEMDIALECT_H

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"

#include "dialect/FEMDialect.h.inc"
#include "dialect/FEMEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialect/FEMAttrs.h.inc"
#define GET_TYPEDEF_CLASSES
#include "dialect/FEMTypes.h.inc"

#endif // FEMC_DIALECT_FEMDIALECT_H
