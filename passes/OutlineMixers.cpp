//===- OutlineMixers.cpp - layer functions: mixers → kernels + calls -------===//
#include "dialect/FEMOps.h"
#include "dialect/FEMPriors.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/SymbolTable.h"

#include <functional>

#define DEBUG_TYPE "fem-outline-mixers"

namespace mlir::fem {
#define GEN_PASS_DEF_FEMOUTLINEMIXERS
#include "passes/Passes.h.inc"
} // namespace mlir::fem

using namespace mlir;
using namespace mlir::fem;

/// True when `f` is already a kernel-level function: its body is exactly one
/// fem.mixer of its arguments and the return of its result.
static bool isKernelLevel(func::FuncOp f) {
  Block &body = f.getBody().front();
  if (body.getOperations().size() != 2)
    return false;
  auto mixer = dyn_cast<MixerOp>(body.front());
  auto ret = dyn_cast<func::ReturnOp>(body.back());
  // The results: the output, and the state after it when the mixer has one.
  if (!mixer || !ret || ret.getOperands() != mixer->getResults())
    return false;
  return llvm::all_of(mixer->getOperands(), [&](Value v) {
    return isa<BlockArgument>(v);
  });
}

/// The operand slot of `mixer` called `name` (a name of the prior table,
/// dialect/Priors.h), as a range of zero or one operands.
static MutableOperandRange operandSlot(MixerOp mixer, StringRef name) {
  if (name == "q")
    return mixer.getQMutable();
  if (name == "k")
    return mixer.getKMutable();
  if (name == "v")
    return MutableOperandRange(mixer.getVMutable());
  if (name == "beta_raw")
    return MutableOperandRange(mixer.getBetaRawMutable());
  if (name == "lam")
    return MutableOperandRange(mixer.getLamMutable());
  if (name == "gate")
    return MutableOperandRange(mixer.getGateMutable());
  if (name == "mask")
    return mixer.getMaskMutable();
  if (name == "decay")
    return mixer.getDecayMutable();
  if (name == "delta")
    return mixer.getDeltaMutable();
  if (name == "A")
    return mixer.getAMutable();
  if (name == "Bs")
    return mixer.getBsMutable();
  if (name == "Cs")
    return mixer.getCsMutable();
  assert(name == "D" && "operand name outside the prior table");
  return mixer.getDMutable();
}

/// Refuses what the layer pipeline cannot compile before anything is
/// outlined: fem ops in a nested module (femc compiles the top-level
/// module's functions only), and recursion among the module's functions
/// (the inliner, which folds a layer's helpers into it, leaves a recursive
/// call in place: the library would recurse without end at run time).
static LogicalResult checkCompilable(ModuleOp module) {
  for (auto nested : module.getBody()->getOps<ModuleOp>()) {
    WalkResult found = nested.walk([](MixerOp) { return WalkResult::interrupt(); });
    if (found.wasInterrupted())
      return nested.emitError()
             << "fem.mixer inside the nested module"
             << (nested.getSymName() ? " '@" + nested.getSymName()->str() + "'"
                                     : std::string())
             << " is not compiled: femc compiles the functions of the "
                "top-level module; move the kernel or layer there";
  }
  // Depth-first search over func.call edges; a call to a function still on
  // the stack closes a cycle.
  SymbolTable symbols(module);
  DenseMap<Operation *, int> state; // 1: on the stack, 2: done
  SmallVector<StringRef> path;
  std::function<LogicalResult(func::FuncOp)> visit =
      [&](func::FuncOp f) -> LogicalResult {
    state[f] = 1;
    path.push_back(f.getSymName());
    WalkResult result = f.walk([&](func::CallOp call) {
      auto callee = symbols.lookup<func::FuncOp>(call.getCallee());
      if (!callee || callee.isExternal())
        return WalkResult::advance();
      if (state.lookup(callee) == 1) {
        std::string cycle;
        auto *start = llvm::find(path, callee.getSymName());
        for (auto *it = start; it != path.end(); ++it)
          cycle += ("@" + *it + " -> ").str();
        cycle += "@" + callee.getSymName().str();
        call.emitError() << "recursive call to '@" << callee.getSymName()
                         << "' (" << cycle
                         << "): femc inlines the functions a kernel or layer "
                            "calls and cannot compile recursion";
        return WalkResult::interrupt();
      }
      if (state.lookup(callee) == 0 && failed(visit(callee)))
        return WalkResult::interrupt();
      return WalkResult::advance();
    });
    path.pop_back();
    state[f] = 2;
    return failure(result.wasInterrupted());
  };
  for (auto f : module.getOps<func::FuncOp>())
    if (state.lookup(f) == 0 && failed(visit(f)))
      return failure();
  return success();
}

namespace {
struct FEMOutlineMixersPass
    : public fem::impl::FEMOutlineMixersBase<FEMOutlineMixersPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (failed(checkCompilable(module)))
      return signalPassFailure();
    SmallVector<func::FuncOp> layers;
    for (auto f : module.getOps<func::FuncOp>())
      if (!f.isExternal() && !f.getOps<MixerOp>().empty() && !isKernelLevel(f))
        layers.push_back(f);
    for (func::FuncOp f : layers) {
      if (failed(outline(f)))
        return signalPassFailure();
      f.setSymName((f.getSymName() + "_layer").str());
    }
  }

  LogicalResult outline(func::FuncOp layer) {
    MLIRContext *ctx = layer.getContext();
    // The layer keeps its name as `fem.layer`; its symbol gets a suffix so
    // the driver's C entry point can take the model's name.
    layer->setAttr("fem.layer", layer.getSymNameAttr());
    layer->setAttr("llvm.emit_c_interface", UnitAttr::get(ctx));
    SmallVector<MixerOp> mixers;
    layer.walk([&](MixerOp m) { mixers.push_back(m); });
    OpBuilder moduleBuilder(layer);
    moduleBuilder.setInsertionPointAfter(layer);
    for (auto [index, mixer] : llvm::enumerate(mixers)) {
      if (mixer.getState() || mixer.getStateOut())
        return mixer.emitError()
               << "fem-outline-mixers: a mixer that carries a state (state "
                  "operand or second result) must be the whole body of a "
                  "kernel-level function; layers do not carry states in "
                  "this version";
      const femc::priors::PriorInfo &info = getPriorInfo(mixer.getKind());
      std::string name =
          (cast<StringAttr>(layer->getAttr("fem.layer")).getValue() + "_fem" +
           Twine(index))
              .str();
      // The kernel's arguments in the order of the prior table (the order
      // fem-tile gives the compiled kernel's buffers, and so the order the
      // driver's <kernel>_run passes them on).
      SmallVector<StringRef> names;
      SmallVector<Value> operands;
      for (std::string_view n : femc::priors::kernelArguments(
               info, static_cast<bool>(mixer.getMask()))) {
        if (n == "out")
          continue;
        StringRef operandName(n.data(), n.size());
        MutableOperandRange slot = operandSlot(mixer, operandName);
        if (slot.empty()) // the verifier rules this out
          return mixer.emitError()
                 << "fem-outline-mixers: prior '"
                 << stringifyPriorKind(mixer.getKind()) << "' needs operand '"
                 << operandName << "'";
        names.push_back(operandName);
        operands.push_back(slot[0].get());
      }
      SmallVector<Type> types;
      for (Value v : operands)
        types.push_back(v.getType());
      Type resultType = mixer.getResult().getType();

      // The kernel-level function.
      auto kernel = func::FuncOp::create(
          moduleBuilder, mixer.getLoc(), name,
          FunctionType::get(ctx, types, {resultType}));
      Block *entry = kernel.addEntryBlock();
      OpBuilder kb = OpBuilder::atBlockBegin(entry);
      // One argument per operand slot, even where the layer passes one value
      // to several slots: the kernel takes exactly the read's operands.
      auto clone = cast<MixerOp>(kb.clone(*mixer));
      for (auto [operandName, arg] : llvm::zip(names, entry->getArguments()))
        operandSlot(clone, operandName).assign(arg);
      func::ReturnOp::create(kb, mixer.getLoc(), clone->getResults());

      // The declaration the driver implements with the kernel's grid.
      SmallVector<Type> bufferTypes;
      // A mask stays i1: one byte per element in memory, the kernel's
      // uint8 mask.
      auto toMemRef = [](Type t) {
        auto rt = cast<RankedTensorType>(t);
        return MemRefType::get(rt.getShape(), rt.getElementType());
      };
      for (Type t : types)
        bufferTypes.push_back(toMemRef(t));
      bufferTypes.push_back(toMemRef(resultType));
      auto run = func::FuncOp::create(moduleBuilder, mixer.getLoc(),
                                      name + "_run",
                                      FunctionType::get(ctx, bufferTypes, {}));
      run.setPrivate();
      run->setAttr("llvm.emit_c_interface", UnitAttr::get(ctx));

      // The call on buffers in place of the mixer.
      OpBuilder b(mixer);
      Location loc = mixer.getLoc();
      SmallVector<Value> args;
      // The read only reads its operands (read_only): bufferization need
      // not copy a read-only layer argument (fem-layer-inputs-read-only)
      // that is passed to the mixer as it is.
      for (auto [v, t] : llvm::zip(operands, bufferTypes))
        args.push_back(
            bufferization::ToBufferOp::create(b, loc, t, v, b.getUnitAttr()));
      auto outType = cast<MemRefType>(bufferTypes.back());
      SmallVector<Value> dynSizes;
      for (int64_t d = 0; d < outType.getRank(); ++d)
        if (outType.isDynamicDim(d))
          dynSizes.push_back(tensor::DimOp::create(b, loc, mixer.getLam(), d));
      Value out = memref::AllocOp::create(b, loc, outType, dynSizes,
                                          b.getI64IntegerAttr(64));
      args.push_back(out);
      func::CallOp::create(b, loc, run, args);
      Value result = bufferization::ToTensorOp::create(
          b, loc, resultType, out, b.getUnitAttr(), b.getUnitAttr());
      mixer.getResult().replaceAllUsesWith(result);
      mixer.erase();
    }
    return success();
  }
};
} // namespace
