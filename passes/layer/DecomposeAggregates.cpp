//===- DecomposeAggregates.cpp - linalg.softmax and kin → linalg.generic --===//
//
// linalg's aggregated ops (AggregatedOpInterface: `linalg.softmax` in MLIR
// 22) are legal in a layer body but have no lowering of their own: neither
// convert-linalg-to-loops nor the LLVM lowering takes them, and the layer
// failed in the LLVM translation on an unrealized cast. Their interface
// decomposes them into linalg ops the rest of the layer pipeline handles
// (generics, fills), so this pass runs that decomposition before
// bufferization.
//
//===----------------------------------------------------------------------===//
#include "passes/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/Builders.h"

#define DEBUG_TYPE "fem-decompose-aggregates"

namespace mlir::fem {
#define GEN_PASS_DEF_FEMDECOMPOSEAGGREGATES
#include "passes/Passes.h.inc"
} // namespace mlir::fem

using namespace mlir;
using namespace mlir::fem;

namespace {
struct FEMDecomposeAggregates
    : public fem::impl::FEMDecomposeAggregatesBase<FEMDecomposeAggregates> {
  void runOnOperation() override {
    SmallVector<linalg::AggregatedOpInterface> ops;
    getOperation()->walk(
        [&](linalg::AggregatedOpInterface op) { ops.push_back(op); });
    for (linalg::AggregatedOpInterface op : ops) {
      OpBuilder b(op);
      FailureOr<SmallVector<Value>> parts = op.decomposeOperation(b);
      if (failed(parts) ||
          parts->size() != op.getOperation()->getNumResults()) {
        op.emitError() << "fem-decompose-aggregates: '"
                       << op.getOperation()->getName()
                       << "' could not be decomposed into linalg ops "
                          "(femc lowers it only on tensors of a layer body)";
        return signalPassFailure();
      }
      op.getOperation()->replaceAllUsesWith(*parts);
      op.getOperation()->erase();
    }
  }
};
} // namespace
