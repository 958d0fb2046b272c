//===- LayerInputs.cpp - a layer never writes its caller's arrays ----------===//
//
// One-shot bufferization with function boundaries takes a function's tensor
// arguments as writable: a layer body op whose destination is an argument
// (`linalg.generic ... outs(%x)`, `arith.mulf %x, %y : tensor<...>` after
// convert-elementwise-to-linalg, which writes into its first operand, or
// `tensor.insert_slice` into an argument) became an in-place write into the
// caller's array. The layer then returned the right output once and
// corrupted x for every later call. Marking the arguments read-only makes
// bufferization copy such a destination into a fresh buffer instead.
//
//===----------------------------------------------------------------------===//
#include "passes/Passes.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"

#define DEBUG_TYPE "fem-layer-inputs-read-only"

namespace mlir::fem {
#define GEN_PASS_DEF_FEMLAYERINPUTSREADONLY
#include "passes/Passes.h.inc"
} // namespace mlir::fem

using namespace mlir;

namespace {
struct FEMLayerInputsReadOnly
    : public fem::impl::FEMLayerInputsReadOnlyBase<FEMLayerInputsReadOnly> {
  void runOnOperation() override {
    auto readOnly = BoolAttr::get(&getContext(), false);
    for (auto f : getOperation().getOps<func::FuncOp>()) {
      if (f.isExternal() || !f->hasAttr("fem.layer"))
        continue;
      for (unsigned i = 0, e = f.getNumArguments(); i != e; ++i)
        if (isa<TensorType>(f.getArgument(i).getType()))
          f.setArgAttr(i, bufferization::BufferizationDialect::kWritableAttrName,
                       readOnly);
    }
  }
};
} // namespace
