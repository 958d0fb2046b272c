//===- TileScan.cpp - workgroup functions from the prior table -------------===//
//
// The parts of fem-tile that the prior table (dialect/Priors.h) decides:
// which tiles a read gets (options, then the read's #fem.tiles, then the
// target's defaults for the prior) and whether they are legal; the
// workgroup grid, stamped once on the workgroup function as `fem.grid`
// (the driver emits its glue from it); and the workgroup function of the
// scan priors (linear, gla, aft, ssm):
//
//   func.func @k_wg(<kernel arguments as memrefs>, %out, %x, %y, %z)
//       attributes {fem.kernel = "k", fem.arg_names = [...],
//                   fem.grid = [["dv", Bc], ["H", 1], ["B", 1]]} {
//     fem.scan_read <prior> ... out(%out) at(%x, %y, %z) {tiles = ...}
//   }
//
//===----------------------------------------------------------------------===//
#include "passes/TileScan.h"

#include "dialect/FEMPriors.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringSwitch.h"

#include <functional>

#define DEBUG_TYPE "fem-tile"

using namespace mlir;
using namespace mlir::fem;
namespace priors = femc::priors;

static StringRef ref(std::string_view s) { return StringRef(s.data(), s.size()); }

FailureOr<TilesAttr> mlir::fem::chooseReadTiles(Operation *read, PriorKind kind,
                                                TilesAttr fromIR, int64_t tileQ,
                                                int64_t tileK, int64_t vec,
                                                int64_t targetVec) {
  const priors::PriorInfo &info = getPriorInfo(kind);
  priors::Tiles t;
  if (fromIR)
    t = toTiles(fromIR);
  if (tileQ != 0)
    t.q = tileQ;
  if (tileK != 0)
    t.k = tileK;
  if (vec != 0)
    t.vec = vec;
  if (t.vec == 0)
    t.vec = targetVec;
  priors::Tiles defaults = priors::defaultTiles(info, t.vec);
  if (t.q == 0)
    t.q = defaults.q;
  if (t.k == 0)
    t.k = defaults.k;
  if (std::optional<std::string> bad = priors::checkTiles(info, t)) {
    read->emitError() << "fem-tile: " << *bad;
    return failure();
  }
  return TilesAttr::get(read->getContext(), t.q, t.k, t.vec);
}

ArrayAttr mlir::fem::workgroupGridAttr(MLIRContext *ctx, PriorKind kind,
                                       TilesAttr tiles) {
  SmallVector<Attribute> axes;
  for (const priors::GridAxis &axis :
       priors::workgroupGrid(getPriorInfo(kind), toTiles(tiles)))
    axes.push_back(ArrayAttr::get(
        ctx, {StringAttr::get(ctx, ref(axis.symbol)),
              IntegerAttr::get(IntegerType::get(ctx, 64), axis.divisor)}));
  return ArrayAttr::get(ctx, axes);
}

FailureOr<SmallVector<priors::GridAxis, 3>>
mlir::fem::readWorkgroupGrid(func::FuncOp wg) {
  auto grid = wg->getAttrOfType<ArrayAttr>("fem.grid");
  if (!grid || grid.size() != 3)
    return wg.emitError() << "workgroup function @" << wg.getSymName()
                          << " has no fem.grid of three axes";
  SmallVector<priors::GridAxis, 3> axes;
  for (Attribute a : grid) {
    auto pair = dyn_cast<ArrayAttr>(a);
    StringAttr symbol = pair && pair.size() == 2
                            ? dyn_cast<StringAttr>(pair[0])
                            : StringAttr();
    IntegerAttr divisor =
        pair && pair.size() == 2 ? dyn_cast<IntegerAttr>(pair[1]) : IntegerAttr();
    if (!symbol || !divisor || divisor.getInt() <= 0 ||
        priors::extentIndex(std::string_view(symbol.getValue().data(),
                                             symbol.getValue().size())) < 0)
      return wg.emitError() << "fem.grid of @" << wg.getSymName()
                            << ": each axis must be [extent name, positive "
                               "divisor], found "
                            << a;
    // Extent names live in the static table, so views into it stay valid.
    int index = priors::extentIndex(std::string_view(
        symbol.getValue().data(), symbol.getValue().size()));
    axes.push_back({priors::kExtents[index], divisor.getInt()});
  }
  return axes;
}

func::FuncOp mlir::fem::createWorkgroupFunction(
    OpBuilder &b, func::FuncOp f,
    ArrayRef<std::pair<Value, StringRef>> operands, Value result,
    PriorKind kind, TilesAttr tiles, Value stateOut) {
  MLIRContext *ctx = f.getContext();
  SmallVector<Type> argTypes;
  SmallVector<Attribute> argNames;
  auto toMemRef = [&](Value v) -> Type {
    auto t = cast<RankedTensorType>(v.getType());
    Type et = t.getElementType();
    if (et.isInteger(1)) // masks are bytes in memory (numpy's bool)
      et = IntegerType::get(ctx, 8);
    return MemRefType::get(t.getShape(), et);
  };
  for (auto [value, name] : operands) {
    argTypes.push_back(toMemRef(value));
    argNames.push_back(StringAttr::get(ctx, name));
  }
  argTypes.push_back(toMemRef(result));
  argNames.push_back(StringAttr::get(ctx, "out"));
  if (stateOut) {
    argTypes.push_back(toMemRef(stateOut));
    argNames.push_back(StringAttr::get(ctx, "state_out"));
  }
  IndexType index = b.getIndexType();
  argTypes.append({index, index, index});

  auto wg = func::FuncOp::create(b, f.getLoc(), (f.getSymName() + "_wg").str(),
                                 FunctionType::get(ctx, argTypes, {}));
  wg->setAttr("fem.kernel", f.getSymNameAttr());
  wg->setAttr("fem.arg_names", ArrayAttr::get(ctx, argNames));
  wg->setAttr("fem.grid", workgroupGridAttr(ctx, kind, tiles));
  wg->setAttr("llvm.emit_c_interface", UnitAttr::get(ctx));
  return wg;
}

namespace {
/// What the scan tiling needs from a kernel's read: a fused read with its
/// prior, or a mixer that carries a state (it stays whole until here).
struct ScanSource {
  Operation *read;
  PriorKind kind;
  UnitAttr causal;
  Value mask, priorMask, result, stateOut;
  FloatAttr cap, eps;
  LayoutAttr layout;
  PriorKindAttr kindAttr;
  std::function<Value(StringRef)> valueOf;
};
} // namespace

static LogicalResult tileScan(func::FuncOp f, const ScanSource &src,
                              TilesAttr tiles) {
  const priors::PriorInfo &info = getPriorInfo(src.kind);
  auto fail = [&](Operation *at) {
    return at->emitError() << "fem-tile: function @" << f.getSymName()
                           << " is not a kernel-level function: ";
  };
  if (src.mask && !info.maskAllowed)
    return src.read->emitError() << "fem-tile: prior '" << ref(info.name)
                                 << "' takes no key mask";
  if (src.priorMask != src.mask)
    return fail(src.read) << "the prior and the read must use the same mask";
  SmallVector<std::pair<Value, StringRef>> operands;
  for (std::string_view n : priors::kernelArguments(
           info, static_cast<bool>(src.mask),
           static_cast<bool>(src.valueOf("state")),
           static_cast<bool>(src.stateOut))) {
    if (priors::isOutputArgument(n))
      continue;
    StringRef name = ref(n);
    Value value = src.valueOf(name);
    if (!value)
      return fail(src.read) << "prior '" << ref(info.name)
                            << "' needs operand '" << name << "'";
    if (!isa<BlockArgument>(value) ||
        cast<BlockArgument>(value).getOwner()->getParentOp() != f)
      return fail(src.read) << "operand '" << name
                            << "' must be a function argument";
    // Every float element type the dialect accepts (f32, f16, bf16) has a
    // CPU lowering (passes/cpu/Builder.h, storage).
    operands.push_back({value, name});
  }
  for (BlockArgument arg : f.getArguments())
    if (llvm::none_of(operands, [&](auto &o) { return o.first == arg; }))
      return fail(f) << "argument #" << arg.getArgNumber()
                     << " is not an operand of the FEM read; a kernel takes "
                        "exactly the read's operands";

  OpBuilder b(f);
  Location loc = f.getLoc();
  func::FuncOp wg = createWorkgroupFunction(b, f, operands, src.result,
                                            src.kind, tiles, src.stateOut);
  Block *body = wg.addEntryBlock();
  OpBuilder bb = OpBuilder::atBlockBegin(body);
  auto args = body->getArguments();
  auto arg = [&](StringRef name) -> Value {
    for (auto [i, o] : llvm::enumerate(operands))
      if (o.second == name)
        return args[i];
    return Value();
  };
  unsigned n = operands.size();
  Value stateOut = src.stateOut ? args[n + 1] : Value();
  unsigned grid = src.stateOut ? n + 2 : n + 1;
  // linear honours `causal`; the always-causal priors carry no flag.
  UnitAttr causal = info.alwaysCausal ? UnitAttr() : src.causal;
  ScanReadOp::create(bb, src.read->getLoc(), src.kindAttr, arg("q"), arg("k"),
                     arg("v"), arg("beta_raw"), arg("lam"), arg("gate"),
                     arg("mask"), arg("decay"), arg("delta"), arg("A"),
                     arg("Bs"), arg("Cs"), arg("D"), arg("state"), args[n],
                     stateOut, /*key_begin=*/Value(), /*key_end=*/Value(),
                     args[grid], args[grid + 1], args[grid + 2], causal,
                     src.cap, src.eps, src.layout, tiles,
                     /*state_only=*/UnitAttr());
  func::ReturnOp::create(bb, loc);
  f.erase();
  return success();
}

LogicalResult mlir::fem::tileScanRead(func::FuncOp f, PriorOp prior,
                                      FusedReadOp read, TilesAttr tiles) {
  ScanSource src;
  src.read = read;
  src.kind = prior.getKind();
  src.kindAttr = prior.getKindAttr();
  src.causal = prior.getCausalAttr();
  src.mask = read.getMask();
  src.priorMask = prior.getMask();
  src.result = read.getResult();
  src.cap = read.getCapAttr();
  src.eps = read.getEpsAttr();
  src.layout = read.getLayoutAttr();
  src.valueOf = [&](StringRef name) -> Value {
    return llvm::StringSwitch<Value>(name)
        .Case("q", prior.getQ())
        .Case("k", prior.getK())
        .Case("v", read.getV())
        .Case("beta_raw", read.getBetaRaw())
        .Case("lam", read.getLam())
        .Case("gate", read.getGate())
        .Case("mask", read.getMask())
        .Case("decay", prior.getDecay())
        .Case("delta", prior.getDelta())
        .Case("A", prior.getA())
        .Case("Bs", prior.getBs())
        .Case("Cs", prior.getCs())
        .Case("D", prior.getD())
        .Default(Value());
  };
  return tileScan(f, src, tiles);
}

LogicalResult mlir::fem::tileStatefulMixer(func::FuncOp f, MixerOp mixer,
                                           TilesAttr tiles) {
  auto fail = [&](Operation *at) {
    return at->emitError() << "fem-tile: function @" << f.getSymName()
                           << " is not a kernel-level function: ";
  };
  for (Operation &op : f.getBody().front()) {
    if (&op == mixer.getOperation())
      continue;
    auto ret = dyn_cast<func::ReturnOp>(op);
    if (!ret)
      return fail(&op) << "found '" << op.getName()
                       << "'; a kernel-level function contains only the FEM "
                          "read of its arguments";
    if (ret.getOperands() != mixer->getResults())
      return fail(ret) << "it must return exactly the mixer's results (the "
                          "output, then the state when it has one)";
  }
  ScanSource src;
  src.read = mixer;
  src.kind = mixer.getKind();
  src.kindAttr = mixer.getKindAttr();
  src.causal = mixer.getCausalAttr();
  src.mask = src.priorMask = mixer.getMask();
  src.result = mixer.getResult();
  src.stateOut = mixer.getStateOut();
  src.cap = mixer.getCapAttr();
  src.eps = mixer.getEpsAttr();
  src.layout = mixer.getLayoutAttr();
  src.valueOf = [&](StringRef name) -> Value {
    return llvm::StringSwitch<Value>(name)
        .Case("q", mixer.getQ())
        .Case("k", mixer.getK())
        .Case("v", mixer.getV())
        .Case("beta_raw", mixer.getBetaRaw())
        .Case("lam", mixer.getLam())
        .Case("gate", mixer.getGate())
        .Case("mask", mixer.getMask())
        .Case("decay", mixer.getDecay())
        .Case("delta", mixer.getDelta())
        .Case("A", mixer.getA())
        .Case("Bs", mixer.getBs())
        .Case("Cs", mixer.getCs())
        .Case("D", mixer.getD())
        .Case("state", mixer.getState())
        .Default(Value());
  };
  return tileScan(f, src, tiles);
}

//===----------------------------------------------------------------------===//
// The chunk-level parallel prefix: the phase functions of a scan kernel
//===----------------------------------------------------------------------===//

int64_t mlir::fem::scanStateWidth(ScanReadOp read) {
  auto last = [](Value v) {
    if (!v)
      return int64_t(-1);
    int64_t d = cast<ShapedType>(v.getType()).getShape().back();
    return ShapedType::isDynamic(d) ? int64_t(-1) : d;
  };
  return femc::priors::stateChannelWidth(getPriorInfo(read.getKind()),
                                         last(read.getQ()), last(read.getA()));
}

/// Whether the read's keys lie on their own axis S (a non-causal read,
/// dialect/Priors.h keysOnQueryAxis): its split phases then take a key range
/// (`keys`, FEMOps.td) and share the centre of all keys.
static bool splitsKeyRange(ScanReadOp read) {
  return !femc::priors::keysOnQueryAxis(getPriorInfo(read.getKind()),
                                        read.getCausal());
}

std::optional<std::string> mlir::fem::whyNotSplit(ScanReadOp read) {
  unsigned ta = timeAxis(read.getLayout());
  auto dynamicTime = [&](Value v) {
    return !v || cast<ShapedType>(v.getType()).isDynamicDim(ta);
  };
  if (!dynamicTime(read.getOut()) || !dynamicTime(read.getV()))
    return std::string("the sequence length is static");
  // A non-causal read splits its keys (phase 1) and its rows (phase 3),
  // every segment centring its tilt on all keys' values (`keys`, FEMOps.td):
  // plain sums, which a carried state's records (max shift, offset form)
  // are not.
  if (splitsKeyRange(read) && (read.getState() || read.getStateOut()))
    return std::string("it is not causal and carries a state");
  if (scanStateWidth(read) < 0)
    return std::string("the state width Ks is dynamic (dk or N is dynamic)");
  // Phase 2 reads these in C: ssm's A (the segment's decay e^(A sum delta))
  // and gla's decay (C at each segment's start) as float32 only.
  for (Value v : {read.getA(), read.getDecay()})
    if (v && !cast<ShapedType>(v.getType()).getElementType().isF32())
      return std::string("its '") + (v == read.getA() ? "A" : "decay") +
             "' is not float32";
  return std::nullopt;
}

LogicalResult mlir::fem::addScanSplitFunctions(ModuleOp module) {
  SmallVector<std::pair<func::FuncOp, ScanReadOp>> kernels;
  module.walk([&](func::FuncOp f) {
    if (!f->hasAttr("fem.kernel"))
      return;
    auto reads = llvm::to_vector(f.getOps<ScanReadOp>());
    if (reads.size() == 1 && !whyNotSplit(reads.front()))
      kernels.push_back({f, reads.front()});
  });
  for (auto [wg, read] : kernels) {
    MLIRContext *ctx = wg.getContext();
    int64_t ks = scanStateWidth(read);
    auto names = wg->getAttrOfType<ArrayAttr>("fem.arg_names");
    Type f32 = Float32Type::get(ctx);
    int64_t dyn = ShapedType::kDynamic;
    for (bool local : {false, true}) {
      // Buffers: the kernel's inputs without its state, then "state" (the
      // segment's initial state; in phase 1 the empty state, except gla's
      // log decay C at the segment's start), "out", "state_out".
      SmallVector<Type> types;
      SmallVector<Attribute> argNames;
      for (auto [i, name] : llvm::enumerate(names)) {
        StringRef n = cast<StringAttr>(name).getValue();
        if (n == "state" || n == "state_out" || n == "out")
          continue;
        types.push_back(wg.getArgument(i).getType());
        argNames.push_back(name);
      }
      Type stateType = MemRefType::get({dyn, dyn, dyn, ks}, f32);
      Type localType = MemRefType::get({dyn, dyn, dyn, ks + 1}, f32);
      types.push_back(stateType);
      argNames.push_back(StringAttr::get(ctx, "state"));
      types.push_back(read.getOut().getType());
      argNames.push_back(StringAttr::get(ctx, "out"));
      types.push_back(local ? localType : stateType);
      argNames.push_back(StringAttr::get(ctx, "state_out"));
      IndexType index = IndexType::get(ctx);
      types.append({index, index, index});
      // A non-causal read's phases take the key range [begin, end) after
      // the grid (`keys`, FEMOps.td): phase 1 its segment's keys, phase 3
      // none, its state then the total of the segments' plain sums (no
      // state_out).
      bool keyRange = splitsKeyRange(read);
      if (keyRange)
        types.append({index, index});
      OpBuilder b(wg);
      b.setInsertionPointAfter(wg);
      std::string sym =
          (wg.getSymName() + (local ? "_local" : "_segment")).str();
      auto fn = func::FuncOp::create(b, wg.getLoc(), sym,
                                     FunctionType::get(ctx, types, {}));
      fn->setAttr("fem.split_of", wg->getAttr("fem.kernel"));
      fn->setAttr("fem.split_phase",
                  StringAttr::get(ctx, local ? "local" : "segment"));
      fn->setAttr("fem.arg_names", ArrayAttr::get(ctx, argNames));
      fn->setAttr("llvm.emit_c_interface", UnitAttr::get(ctx));
      Block *body = fn.addEntryBlock();
      OpBuilder bb = OpBuilder::atBlockBegin(body);
      auto arg = [&](StringRef name) -> Value {
        for (auto [i, n] : llvm::enumerate(argNames))
          if (cast<StringAttr>(n).getValue() == name)
            return body->getArgument(i);
        return Value();
      };
      unsigned grid = argNames.size();
      Value keyBegin = keyRange ? body->getArgument(grid + 3) : Value();
      Value keyEnd = keyRange ? body->getArgument(grid + 4) : Value();
      Value stateOut = keyRange && !local ? Value() : arg("state_out");
      auto created = ScanReadOp::create(
          bb, read.getLoc(), read.getKindAttr(), arg("q"), arg("k"), arg("v"),
          arg("beta_raw"), arg("lam"), arg("gate"), arg("mask"), arg("decay"),
          arg("delta"), arg("A"), arg("Bs"), arg("Cs"), arg("D"), arg("state"),
          arg("out"), stateOut, keyBegin, keyEnd, body->getArgument(grid),
          body->getArgument(grid + 1), body->getArgument(grid + 2),
          read.getCausalAttr(), read.getCapAttr(), read.getEpsAttr(),
          read.getLayoutAttr(), read.getTiles(),
          local ? UnitAttr::get(ctx) : UnitAttr());
      func::ReturnOp::create(bb, wg.getLoc());
      if (failed(created.verify()))
        return failure();
    }
  }
  return success();
}
