//===- LayerStage.h - the stage functions of layer passes ------*- C++ -*-===//
//
// What fem-layer-matmul and fem-layer-loop-stages share to make a stage:
// the pair of functions the driver's glue runs on libfemrt's pool
// (`<base>_wg`, `<base>_run`; driver/Compiler.cpp, collectLayerStages) and
// the buffer behind a chain of views.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_PASSES_LAYER_LAYERSTAGE_H
#define FEMC_PASSES_LAYER_LAYERSTAGE_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

#include <utility>

namespace mlir::fem::layer {

/// The pair of functions of one stage: the public workgroup function
/// `<base>_wg(args..., index)` (attribute fem.stage = `kind`; body left to
/// the caller: it has an empty entry block) and the private
/// `<base>_run(args..., count)` the layer calls and the driver's glue
/// implements on the pool. `mb`'s insertion point ends after the first.
inline std::pair<func::FuncOp, func::FuncOp>
declareStage(OpBuilder &mb, Location loc, StringRef base, TypeRange args,
             StringRef kind) {
  MLIRContext *ctx = mb.getContext();
  SmallVector<Type> types(args);
  types.push_back(IndexType::get(ctx));
  auto wg = func::FuncOp::create(mb, loc, (base + "_wg").str(),
                                 FunctionType::get(ctx, types, {}));
  wg->setAttr("llvm.emit_c_interface", UnitAttr::get(ctx));
  wg->setAttr("fem.stage", StringAttr::get(ctx, kind));
  wg.addEntryBlock();
  mb.setInsertionPointAfter(wg);
  auto run = func::FuncOp::create(mb, loc, (base + "_run").str(),
                                  FunctionType::get(ctx, types, {}));
  run.setPrivate();
  run->setAttr("llvm.emit_c_interface", UnitAttr::get(ctx));
  run->setAttr("fem.stage", StringAttr::get(ctx, wg.getSymName()));
  return {wg, run};
}

/// The buffer a chain of views reads.
inline Value rootBuffer(Value v) {
  while (Operation *def = v.getDefiningOp()) {
    auto view = dyn_cast<ViewLikeOpInterface>(def);
    if (!view)
      break;
    v = view.getViewSource();
  }
  return v;
}

} // namespace mlir::fem::layer

#endif // FEMC_PASSES_LAYER_LAYERSTAGE_H
