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
#include "llvm/ADT/StringSwitch.h"

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
    PriorKind kind, TilesAttr tiles) {
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

LogicalResult mlir::fem::tileScanRead(func::FuncOp f, PriorOp prior,
                                      FusedReadOp read, TilesAttr tiles) {
  const priors::PriorInfo &info = getPriorInfo(prior.getKind());
  auto fail = [&](Operation *at) {
    return at->emitError() << "fem-tile: function @" << f.getSymName()
                           << " is not a kernel-level function: ";
  };
  if (read.getMask() && !info.maskAllowed)
    return read.emitError() << "fem-tile: prior '" << ref(info.name)
                            << "' takes no key mask";
  if (prior.getMask() != read.getMask())
    return fail(read) << "the prior and the read must use the same mask";
  auto valueOf = [&](StringRef name) -> Value {
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
  SmallVector<std::pair<Value, StringRef>> operands;
  for (std::string_view n :
       priors::kernelArguments(info, static_cast<bool>(read.getMask()))) {
    if (n == "out")
      continue;
    StringRef name = ref(n);
    Value value = valueOf(name);
    if (!value)
      return fail(read) << "prior '" << ref(info.name) << "' needs operand '"
                        << name << "'";
    if (!isa<BlockArgument>(value) ||
        cast<BlockArgument>(value).getOwner()->getParentOp() != f)
      return fail(read) << "operand '" << name
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
  func::FuncOp wg = createWorkgroupFunction(b, f, operands, read.getResult(),
                                            prior.getKind(), tiles);
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
  // linear honours `causal`; the always-causal priors carry no flag.
  UnitAttr causal = info.alwaysCausal ? UnitAttr() : prior.getCausalAttr();
  ScanReadOp::create(bb, read.getLoc(), prior.getKindAttr(), arg("q"),
                     arg("k"), arg("v"), arg("beta_raw"), arg("lam"),
                     arg("gate"), arg("mask"), arg("decay"), arg("delta"),
                     arg("A"), arg("Bs"), arg("Cs"), arg("D"), args[n],
                     args[n + 1], args[n + 2], args[n + 3], causal,
                     read.getCapAttr(), read.getEpsAttr(),
                     read.getLayoutAttr(), tiles);
  func::ReturnOp::create(bb, loc);
  f.erase();
  return success();
}
