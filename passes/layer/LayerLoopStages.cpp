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
// Where the band's last loop has step 1 and its body is element-wise
// arith/math on floats, loads and stores whose last index is that loop's
// variable (or that do not depend on it) and inner scf.for loops carrying
// floats, a workgroup runs it in groups of `lanes` consecutive iterations
// as vectors (LaneCloner): the scan over t of 16 channels at once with
// AVX-512, the cumulative decay carried as a vector. A last partial group
// runs as the scalar loop.
//
// Each workgroup runs its iterations as the loops did (each lane of a
// vector op is the scalar op on that iteration's values), so results are
// bit for bit those of the serial nest.
//
//===----------------------------------------------------------------------===//
#include "passes/Passes.h"
#include "passes/layer/LayerStage.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
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

using mlir::fem::layer::declareStage;
using mlir::fem::layer::rootBuffer;

namespace {

/// Workgroups a loop stage's flattened band is cut into, at most.
constexpr int64_t kLoopChunks = 64;

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
      Value root = rootBuffer(a->memref);
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
        if (!v || !inside(rootBuffer(v)))
          ok = false;
        continue;
      }
      if (!v) {
        ok = false;
        continue;
      }
      if (!inside(rootBuffer(v)))
        mem.otherReads.push_back(rootBuffer(v));
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
/// and in the workgroup function (the chunk it runs). With `lanes` > 1 the
/// last band loop counts groups of `lanes` iterations.
struct LoopGrid {
  SmallVector<Value> trips;
  Value total, chunk, count;
};

LoopGrid loopGrid(OpBuilder &b, Location loc, ArrayRef<scf::ForOp> band,
                  int64_t lanes, function_ref<Value(Value)> map) {
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
    if (loop == band.back() && lanes > 1)
      trips = ceilDiv(trips, idx(lanes));
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

/// Vector lanes for the lanes of a stage's last band loop: 16 where the
/// module's features have AVX-512F, else 8 (two 4-lane halves where the
/// target has no 256-bit vectors).
int64_t loopLanes(ModuleOp module) {
  auto features = module->getAttrOfType<StringAttr>("fem.target_features");
  SmallVector<StringRef> list;
  if (features)
    features.getValue().split(list, ',');
  return llvm::is_contained(list, "+avx512f") ? 16 : 8;
}

/// Clones the body of the band's last loop (induction variable `j`) as
/// `lanes` consecutive iterations j0 .. j0 + lanes - 1 at once: a value
/// that depends on j becomes a vector of its lanes' values, computed by the
/// same op on vectors (so each lane's bits are the scalar loop's). Takes
/// element-wise arith/math ops, loads and stores whose last index is j
/// (vector.load/store of the lanes), loads that do not depend on j
/// (scalars, broadcast where a vector needs them), constants and scf.for
/// loops with float carried values (carried as vectors). Fails on
/// anything else (j in an index computation, j at another dimension,
/// integer or index values that depend on j).
class LaneCloner {
public:
  LaneCloner(OpBuilder &b, IRMapping &scalar, Value j, Value j0, int64_t lanes)
      : b(b), scalar(scalar), j(j), j0(j0), lanes(lanes) {}

  LogicalResult cloneBlock(Block &block) {
    for (Operation &op : block.without_terminator())
      if (failed(cloneOp(op)))
        return failure();
    return success();
  }

  Value vec(Value v) {
    if (Value w = vectors.lookup(v))
      return w;
    Value s = scalar.lookupOrDefault(v);
    return vector::BroadcastOp::create(b, s.getLoc(), vectorOf(s.getType()),
                                       s);
  }
  bool varying(Value v) const { return v == j || vectors.count(v); }

private:
  VectorType vectorOf(Type t) { return VectorType::get({lanes}, t); }

  /// Indices of an access: j only as the last one.
  std::optional<SmallVector<Value>> laneIndices(ValueRange indices) {
    SmallVector<Value> out;
    for (auto [d, index] : llvm::enumerate(indices)) {
      if (index == j && d + 1 == indices.size()) {
        out.push_back(j0);
        continue;
      }
      if (varying(index))
        return std::nullopt;
      out.push_back(scalar.lookupOrDefault(index));
    }
    return out;
  }

  LogicalResult cloneOp(Operation &op) {
    Location loc = op.getLoc();
    bool anyVarying = llvm::any_of(op.getOperands(),
                                   [&](Value v) { return varying(v); });
    if (auto load = dyn_cast<memref::LoadOp>(op)) {
      if (!anyVarying) {
        b.clone(op, scalar);
        return success();
      }
      std::optional<SmallVector<Value>> at = laneIndices(load.getIndices());
      if (!at || varying(load.getMemRef()))
        return failure();
      vectors[load.getResult()] = vector::LoadOp::create(
          b, loc, vectorOf(load.getType()),
          scalar.lookupOrDefault(load.getMemRef()), *at);
      return success();
    }
    if (auto store = dyn_cast<memref::StoreOp>(op)) {
      std::optional<SmallVector<Value>> at = laneIndices(store.getIndices());
      if (!at || varying(store.getMemRef()) ||
          !llvm::is_contained(store.getIndices(), j))
        return failure();
      vector::StoreOp::create(b, loc, vec(store.getValueToStore()),
                              scalar.lookupOrDefault(store.getMemRef()), *at);
      return success();
    }
    if (auto loop = dyn_cast<scf::ForOp>(op)) {
      if (varying(loop.getLowerBound()) || varying(loop.getUpperBound()) ||
          varying(loop.getStep()) ||
          !llvm::all_of(loop.getInitArgs(), [](Value v) {
            return isa<FloatType>(v.getType());
          }))
        return failure();
      SmallVector<Value> inits = llvm::map_to_vector(
          loop.getInitArgs(), [&](Value v) { return vec(v); });
      auto lanesLoop = scf::ForOp::create(
          b, loc, scalar.lookupOrDefault(loop.getLowerBound()),
          scalar.lookupOrDefault(loop.getUpperBound()),
          scalar.lookupOrDefault(loop.getStep()), inits);
      scalar.map(loop.getInductionVar(), lanesLoop.getInductionVar());
      for (auto [from, to] :
           llvm::zip(loop.getRegionIterArgs(), lanesLoop.getRegionIterArgs()))
        vectors[from] = to;
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(lanesLoop.getBody());
      if (failed(cloneBlock(*loop.getBody())))
        return failure();
      SmallVector<Value> yields = llvm::map_to_vector(
          loop.getBody()->getTerminator()->getOperands(),
          [&](Value v) { return vec(v); });
      scf::YieldOp::create(b, loc, yields);
      for (auto [from, to] : llvm::zip(loop.getResults(), lanesLoop.getResults()))
        vectors[from] = to;
      return success();
    }
    if (op.getNumRegions() != 0 || !isMemoryEffectFree(&op))
      return failure();
    if (!anyVarying) {
      b.clone(op, scalar);
      return success();
    }
    // Element-wise on int or float scalars (never index: j itself).
    if (!op.hasTrait<OpTrait::Elementwise>() ||
        !llvm::all_of(op.getResultTypes(), [](Type t) {
          return isa<FloatType, IntegerType>(t);
        }) ||
        llvm::any_of(op.getOperands(), [&](Value v) {
          return !isa<FloatType, IntegerType>(v.getType());
        }))
      return failure();
    OperationState state(loc, op.getName());
    for (Value v : op.getOperands())
      state.addOperands(vec(v));
    for (Type t : op.getResultTypes())
      state.addTypes(vectorOf(t));
    state.addAttributes(op.getAttrs());
    Operation *lanesOp = b.create(state);
    for (auto [from, to] : llvm::zip(op.getResults(), lanesOp->getResults()))
      vectors[from] = to;
    return success();
  }

  OpBuilder &b;
  IRMapping &scalar;
  Value j, j0;
  int64_t lanes;
  DenseMap<Value, Value> vectors;
};

/// Outlines `top` as stage `<layer>_loop<index>` if its band is parallel;
/// with `lanes` > 1, the band's last loop runs in groups of `lanes`
/// iterations as vectors (a partial group as the scalar loop), or the
/// outlining fails and nothing is changed.
bool outlineNest(scf::ForOp top, StringRef layerName, unsigned index,
                 int64_t lanes) {
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
  if (lanes > 1 && !matchPattern(band.back().getStep(), m_One()))
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
  auto [wg, run] = declareStage(mb, loc, base, types, "loop");
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
  auto mapped = [&](Value v) { return mapping.lookupOrDefault(v); };
  LoopGrid grid = loopGrid(b, loc, band, lanes, mapped);
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
    Value step = mapped(loop.getStep());
    if (k + 1 == static_cast<int64_t>(band.size()) && lanes > 1)
      step = arith::ConstantIndexOp::create(fb, loc, lanes);
    Value iv = arith::AddIOp::create(fb, loc, mapped(loop.getLowerBound()),
                                     arith::MulIOp::create(fb, loc, pos, step));
    mapping.map(loop.getInductionVar(), iv);
  }
  Block *body = band.back().getBody();
  if (lanes == 1) {
    for (Operation &op : body->without_terminator())
      fb.clone(op, mapping);
  } else {
    // A whole group as vectors; the last, partial one as the scalar loop.
    scf::ForOp lanesLoop = band.back();
    Value j0 = mapping.lookup(lanesLoop.getInductionVar());
    Value ub = mapped(lanesLoop.getUpperBound());
    Value whole = arith::CmpIOp::create(
        fb, loc, arith::CmpIPredicate::sle,
        arith::AddIOp::create(fb, loc, j0,
                              arith::ConstantIndexOp::create(fb, loc, lanes)),
        ub);
    auto ifOp = scf::IfOp::create(fb, loc, whole, /*withElseRegion=*/true);
    OpBuilder vb = ifOp.getThenBodyBuilder();
    IRMapping vectorScalars = mapping;
    LaneCloner cloner(vb, vectorScalars, lanesLoop.getInductionVar(), j0,
                      lanes);
    if (failed(cloner.cloneBlock(*body))) {
      wg.erase();
      run.erase();
      return false;
    }
    OpBuilder eb = ifOp.getElseBodyBuilder();
    auto tail = scf::ForOp::create(eb, loc, j0, ub,
                                   arith::ConstantIndexOp::create(eb, loc, 1));
    OpBuilder tb = OpBuilder::atBlockBegin(tail.getBody());
    tb.setInsertionPoint(tail.getBody()->getTerminator());
    mapping.map(lanesLoop.getInductionVar(), tail.getInductionVar());
    for (Operation &op : body->without_terminator())
      tb.clone(op, mapping);
  }

  OpBuilder lb(top);
  LoopGrid layerGrid = loopGrid(lb, loc, band, lanes, [](Value v) { return v; });
  SmallVector<Value> args(c.buffers);
  args.push_back(layerGrid.count);
  func::CallOp::create(lb, loc, run, args);
  top.erase();
  return true;
}

struct FEMLayerLoopStagesPass
    : public fem::impl::FEMLayerLoopStagesBase<FEMLayerLoopStagesPass> {
  using FEMLayerLoopStagesBase::FEMLayerLoopStagesBase;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (lanes < 0) {
      module.emitError() << "fem-layer-loop-stages: option lanes must be 0 "
                            "(from the target) or positive, found "
                         << static_cast<int64_t>(lanes);
      return signalPassFailure();
    }
    int64_t width = lanes > 0 ? static_cast<int64_t>(lanes) : loopLanes(module);
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
        if ((width > 1 && outlineNest(nest, name, index, width)) ||
            outlineNest(nest, name, index, 1))
          ++index;
    }
  }
};

} // namespace
