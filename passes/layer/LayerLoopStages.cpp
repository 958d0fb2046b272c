//===- LayerLoopStages.cpp - layer loop nests → stages on the pool --------===//
//
// fem-layer-matmul makes a layer's contractions and linalg generics stages
// the C glue runs on libfemrt's pool. What a layer body holds besides them
// are loop nests: the time-decay conditioning the importer writes as an
// scf.for nest over (b, channel, t) with the cumulative decay carried over
// t (semantics.md §7), and any generic fem-layer-matmul left as loops. They
// ran on the launching thread. This pass, after convert-linalg-to-loops,
// makes each top-level scf.for nest of a layer function whose leading loops
// are parallel a stage of its own:
//
//   <layer>_loop<N>_wg(buffers..., i)   (public, fem.stage = "loop")
//   <layer>_loop<N>_run(buffers..., n)  (private; the driver's glue runs
//                                        workgroups 0..n-1 on the pool)
//
// The band: the outer loop and, where its body is exactly one more loop
// with invariant bounds whose own body still holds a loop, that loop too
// (at most two; the innermost loop stays whole, so a stage's iteration is
// never a single scalar). The band's iterations, flattened, are cut into
// at most kLoopChunks contiguous chunks, one per workgroup.
//
// A band loop is parallel when every buffer the nest writes, other than
// buffers it allocates itself, is a memref.alloc of the layer (never an
// argument, which could alias another), is accessed in the nest only by
// memref.load/store (or vector.load/store) of one identity-layout view,
// and every such access indexes one fixed dimension with exactly the
// loop's induction variable (not a vector's dimension). Iterations then
// touch disjoint elements of what they write, and the buffers they only
// read are not written during the stage. Any other op with memory effects
// (a call, a copy into an outside buffer, a write through another view)
// leaves the nest where it is. The band loops must have no results;
// scalars the nest uses from above must be constants or pure index
// arithmetic of buffers' extents (cloned into the stage); buffers are
// passed as the stage's arguments.
//
// Each workgroup runs the same iterations in the same order as the loops
// did, so results are bit for bit those of the serial nest.
//
//===----------------------------------------------------------------------===//
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/LoopLikeInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SetVector.h"

#define DEBUG_TYPE "fem-layer-loop-stages"

namespace mlir::fem {
#define GEN_PASS_DEF_FEMLAYERLOOPSTAGES
#include "passes/Passes.h.inc"
} // namespace mlir::fem

using namespace mlir;
using namespace mlir::fem;

namespace {

/// Workgroups a loop stage's flattened band is cut into, at most.
constexpr int64_t kLoopChunks = 64;

/// The buffer a chain of views reads.
Value rootOf(Value v) {
  while (Operation *def = v.getDefiningOp()) {
    auto view = dyn_cast<ViewLikeOpInterface>(def);
    if (!view)
      break;
    v = view.getViewSource();
  }
  return v;
}

/// One load or store of the nest: the memref it goes through, its indices
/// and the rank of the vector it moves (0 for a scalar).
struct Access {
  Value memref;
  SmallVector<Value> indices;
  int64_t vectorRank = 0;
  bool write = false;
};

std::optional<Access> asAccess(Operation *op) {
  if (auto load = dyn_cast<memref::LoadOp>(op))
    return Access{load.getMemRef(), SmallVector<Value>(load.getIndices()), 0,
                  false};
  if (auto store = dyn_cast<memref::StoreOp>(op))
    return Access{store.getMemRef(), SmallVector<Value>(store.getIndices()),
                  0, true};
  if (auto load = dyn_cast<vector::LoadOp>(op))
    return Access{load.getBase(), SmallVector<Value>(load.getIndices()),
                  load.getVectorType().getRank(), false};
  if (auto store = dyn_cast<vector::StoreOp>(op))
    return Access{store.getBase(), SmallVector<Value>(store.getIndices()),
                  store.getVectorType().getRank(), true};
  return std::nullopt;
}

/// The memory behaviour of a nest: its accesses to buffers defined outside
/// it, keyed by root. False if an op's effects are unknown or write
/// something other than through a store this pass understands.
struct NestMemory {
  llvm::MapVector<Value, SmallVector<Access>> outside;
  llvm::SmallDenseSet<Value> written;
  /// Ops other than loads and stores that read an outside buffer (their
  /// roots must not be written).
  SmallVector<Value> otherReads;
};

bool collectMemory(scf::ForOp nest, NestMemory &mem) {
  auto inside = [&](Value root) {
    return nest->isAncestor(root.getParentRegion()->getParentOp());
  };
  bool ok = true;
  nest->walk([&](Operation *op) {
    if (!ok)
      return WalkResult::interrupt();
    if (std::optional<Access> a = asAccess(op)) {
      Value root = rootOf(a->memref);
      if (!inside(root)) {
        if (a->write)
          mem.written.insert(root);
        mem.outside[root].push_back(std::move(*a));
      }
      return WalkResult::advance();
    }
    if (op->hasTrait<OpTrait::HasRecursiveMemoryEffects>() ||
        isMemoryEffectFree(op))
      return WalkResult::advance();
    auto iface = dyn_cast<MemoryEffectOpInterface>(op);
    if (!iface) {
      ok = false;
      return WalkResult::interrupt();
    }
    SmallVector<MemoryEffects::EffectInstance> effects;
    iface.getEffects(effects);
    for (const MemoryEffects::EffectInstance &e : effects) {
      Value v = e.getValue();
      if (isa<MemoryEffects::Allocate>(e.getEffect()))
        continue;
      // Freeing or writing: only buffers the nest allocates itself.
      if (isa<MemoryEffects::Free, MemoryEffects::Write>(e.getEffect())) {
        if (!v || !inside(rootOf(v)))
          ok = false;
        continue;
      }
      if (!v) {
        ok = false;
        continue;
      }
      if (!inside(rootOf(v)))
        mem.otherReads.push_back(rootOf(v));
    }
    return ok ? WalkResult::advance() : WalkResult::interrupt();
  });
  return ok;
}

/// True if iterations of `loop` write disjoint elements of every buffer the
/// nest writes and read none another iteration writes.
bool isParallel(scf::ForOp loop, const NestMemory &mem) {
  Value iv = loop.getInductionVar();
  for (Value root : mem.written) {
    if (!isa_and_nonnull<memref::AllocOp, memref::AllocaOp>(
            root.getDefiningOp()))
      return false;
    if (llvm::is_contained(mem.otherReads, root))
      return false;
    const SmallVector<Access> &accesses = mem.outside.lookup(root);
    Value view = accesses.front().memref;
    auto type = dyn_cast<MemRefType>(view.getType());
    if (!type || !type.getLayout().isIdentity())
      return false;
    std::optional<unsigned> dim;
    for (const Access &a : accesses) {
      if (a.memref != view)
        return false;
      std::optional<unsigned> here;
      for (auto [d, index] : llvm::enumerate(a.indices))
        if (index == iv &&
            static_cast<int64_t>(d) < type.getRank() - a.vectorRank)
          here = d;
      if (!here || (dim && *dim != *here))
        return false;
      dim = here;
    }
  }
  return true;
}

/// The band of `top`: it and at most one more perfectly nested loop, with
/// no results and bounds defined above `top`, the innermost loop of the nest
/// never taken.
SmallVector<scf::ForOp> bandOf(scf::ForOp top) {
  SmallVector<scf::ForOp> band;
  scf::ForOp cur = top;
  while (cur && band.size() < 2 && cur.getNumResults() == 0) {
    bool innermost = true;
    cur.getBody()->walk([&](LoopLikeOpInterface) { innermost = false; });
    if (innermost && !band.empty())
      break;
    band.push_back(cur);
    Block *body = cur.getBody();
    scf::ForOp next;
    if (body->getOperations().size() == 2)
      next = dyn_cast<scf::ForOp>(&body->front());
    if (!next || llvm::any_of(next->getOperands(), [&](Value v) {
          return top->isAncestor(v.getParentRegion()->getParentOp());
        }))
      break;
    cur = next;
  }
  return band;
}

/// Trip counts, their product and the chunking, as index IR from the band's
/// bounds (mapped by `map`): the same arithmetic in the layer (the count)
/// and in the workgroup function (the chunk it runs).
struct LoopGrid {
  SmallVector<Value> trips;
  Value total, chunk, count;
};

LoopGrid loopGrid(OpBuilder &b, Location loc, ArrayRef<scf::ForOp> band,
                  function_ref<Value(Value)> map) {
  auto idx = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  auto ceilDiv = [&](Value x, Value d) -> Value {
    Value plus = arith::AddIOp::create(b, loc, x,
                                       arith::SubIOp::create(b, loc, d, idx(1)));
    return arith::DivUIOp::create(b, loc, plus, d);
  };
  LoopGrid g;
  Value zero = idx(0), one = idx(1);
  g.total = one;
  for (scf::ForOp loop : band) {
    Value lb = map(loop.getLowerBound()), ub = map(loop.getUpperBound());
    Value step = map(loop.getStep());
    Value span = arith::SubIOp::create(b, loc, ub, lb);
    Value some = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt, ub,
                                       lb);
    Value trips = arith::SelectOp::create(b, loc, some, ceilDiv(span, step),
                                          zero);
    g.trips.push_back(trips);
    g.total = arith::MulIOp::create(b, loc, g.total, trips);
  }
  Value wanted = arith::MaxSIOp::create(
      b, loc, one, arith::MinSIOp::create(b, loc, g.total, idx(kLoopChunks)));
  g.chunk = arith::MaxSIOp::create(b, loc, one, ceilDiv(g.total, wanted));
  g.count = ceilDiv(g.total, g.chunk);
  return g;
}

/// What the stage takes from the layer: buffers (its arguments) and the
/// pure scalar ops to clone (in order). False if a scalar used inside comes
/// from anything else.
struct Captures {
  SmallVector<Value> buffers;
  llvm::SetVector<Operation *> clones;
};

bool capture(Value v, Captures &c) {
  if (isa<BaseMemRefType>(v.getType())) {
    if (!llvm::is_contained(c.buffers, v))
      c.buffers.push_back(v);
    return true;
  }
  Operation *def = v.getDefiningOp();
  if (!def)
    return false;
  if (c.clones.contains(def))
    return true;
  if (def->getNumRegions() != 0 || !isMemoryEffectFree(def))
    return false;
  for (Value operand : def->getOperands())
    if (!capture(operand, c))
      return false;
  c.clones.insert(def);
  return true;
}

/// The pair of stage functions (as fem-layer-matmul declares its stages).
std::pair<func::FuncOp, func::FuncOp> declareStage(OpBuilder &mb, Location loc,
                                                   StringRef base,
                                                   TypeRange args) {
  MLIRContext *ctx = mb.getContext();
  SmallVector<Type> types(args);
  types.push_back(IndexType::get(ctx));
  auto wg = func::FuncOp::create(mb, loc, (base + "_wg").str(),
                                 FunctionType::get(ctx, types, {}));
  wg->setAttr("llvm.emit_c_interface", UnitAttr::get(ctx));
  wg->setAttr("fem.stage", StringAttr::get(ctx, "loop"));
  wg.addEntryBlock();
  mb.setInsertionPointAfter(wg);
  auto run = func::FuncOp::create(mb, loc, (base + "_run").str(),
                                  FunctionType::get(ctx, types, {}));
  run.setPrivate();
  run->setAttr("llvm.emit_c_interface", UnitAttr::get(ctx));
  run->setAttr("fem.stage", StringAttr::get(ctx, wg.getSymName()));
  return {wg, run};
}

/// Outlines `top` as stage `<layer>_loop<index>` if its band is parallel.
bool outlineNest(scf::ForOp top, StringRef layerName, unsigned index) {
  SmallVector<scf::ForOp> band = bandOf(top);
  NestMemory mem;
  if (band.empty() || !collectMemory(top, mem))
    return false;
  while (!band.empty() && !llvm::all_of(band, [&](scf::ForOp loop) {
    return isParallel(loop, mem);
  }))
    band.pop_back();
  if (band.empty())
    return false;

  Captures c;
  llvm::SetVector<Value> used;
  getUsedValuesDefinedAbove(top.getRegion(), used);
  for (Value v : top->getOperands())
    used.insert(v);
  for (Value v : used)
    if (!capture(v, c))
      return false;

  MLIRContext *ctx = top.getContext();
  Location loc = top.getLoc();
  auto layer = top->getParentOfType<func::FuncOp>();
  std::string base = (layerName + "_loop" + Twine(index)).str();
  SmallVector<Type> types =
      llvm::map_to_vector(c.buffers, [](Value v) { return v.getType(); });
  OpBuilder mb(ctx);
  mb.setInsertionPointAfter(layer);
  auto [wg, run] = declareStage(mb, loc, base, types);
  Block *entry = &wg.getBody().front();
  OpBuilder b = OpBuilder::atBlockBegin(entry);
  b.setInsertionPoint(func::ReturnOp::create(b, loc));
  IRMapping mapping;
  for (auto [v, arg] : llvm::zip(c.buffers, entry->getArguments()))
    mapping.map(v, arg);
  for (Operation *op : c.clones)
    b.clone(*op, mapping);

  // Workgroup i: flat iterations [i·chunk, min(total, (i+1)·chunk)), each
  // delinearised over the band (last loop fastest) as the loops ran them.
  LoopGrid grid = loopGrid(b, loc, band, [&](Value v) {
    return mapping.lookupOrDefault(v);
  });
  Value i = entry->getArguments().back();
  Value first = arith::MulIOp::create(b, loc, i, grid.chunk);
  Value last = arith::MinSIOp::create(
      b, loc, grid.total, arith::AddIOp::create(b, loc, first, grid.chunk));
  auto flat = scf::ForOp::create(b, loc, first, last,
                                 arith::ConstantIndexOp::create(b, loc, 1));
  OpBuilder fb = OpBuilder::atBlockBegin(flat.getBody());
  fb.setInsertionPoint(flat.getBody()->getTerminator());
  Value rest = flat.getInductionVar();
  for (int64_t k = band.size() - 1; k >= 0; --k) {
    Value pos = rest;
    if (k > 0) {
      pos = arith::RemUIOp::create(fb, loc, rest, grid.trips[k]);
      rest = arith::DivUIOp::create(fb, loc, rest, grid.trips[k]);
    }
    scf::ForOp loop = band[k];
    Value iv = arith::AddIOp::create(
        fb, loc, mapping.lookupOrDefault(loop.getLowerBound()),
        arith::MulIOp::create(fb, loc, pos,
                              mapping.lookupOrDefault(loop.getStep())));
    mapping.map(loop.getInductionVar(), iv);
  }
  for (Operation &op : band.back().getBody()->without_terminator())
    fb.clone(op, mapping);

  OpBuilder lb(top);
  LoopGrid layerGrid = loopGrid(lb, loc, band, [](Value v) { return v; });
  SmallVector<Value> args(c.buffers);
  args.push_back(layerGrid.count);
  func::CallOp::create(lb, loc, run, args);
  top.erase();
  return true;
}

struct FEMLayerLoopStagesPass
    : public fem::impl::FEMLayerLoopStagesBase<FEMLayerLoopStagesPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<func::FuncOp> layers;
    for (auto f : module.getOps<func::FuncOp>())
      if (!f.isExternal() && isa_and_nonnull<StringAttr>(f->getAttr("fem.layer")))
        layers.push_back(f);
    for (func::FuncOp f : layers) {
      StringRef name = f->getAttrOfType<StringAttr>("fem.layer").getValue();
      SmallVector<scf::ForOp> nests;
      for (Block &block : f.getBody())
        for (auto loop : block.getOps<scf::ForOp>())
          nests.push_back(loop);
      unsigned index = 0;
      for (scf::ForOp nest : nests)
        if (outlineNest(nest, name, index))
          ++index;
    }
  }
};

} // namespace
