//===- LayerMatmul.cpp - layer projections → packed, blocked matmul stages -===//
//
// The projections of a layer (nn.Linear's y = x·Wᵀ + b, the per-head
// forms x(B,T,D)·W(D,H,d), the output projection o(B,T,H,d)·Wo(H,d,D))
// are linalg contractions. Lowered to loops they run one scalar
// multiply-add at a time: 8-14x slower than PyTorch for a whole layer.
// This pass, on bufferized layer functions, replaces each such contraction
// C(M,N) += A(M,K)·B (B as (K,N) or as (N,K)) by two parallel stages:
//
//   pack:   B → P (⌈N/NR⌉, K, NR), NR = 2 vectors, zero-padded columns;
//           one workgroup per column panel;
//   matmul: one workgroup per block of MB rows of C; for each panel, an
//           MR x NR register block (MR = 6 rows, 2·MR vector accumulators
//           initialised from C, so a bias or zero fill before the
//           contraction is kept) walks K with one broadcast of A and two
//           loads of P per row pair of FMAs; edge columns are masked, edge
//           rows use a 1 x NR block.
//
// The workgroup functions are public (`<layer>_mm_pack_nn_wg`,
// `<layer>_mm_pack_nt_wg`, `<layer>_mm_wg`, argument `fem.stage`); the
// layer calls `<layer>_mm_*_run(buffers..., count)`, which the driver's
// glue implements by running the workgroups 0..count-1 on libfemrt's pool
// (see docs/architecture.md, "Layers"). A contraction whose operands do
// not collapse to those matrices (a batch dimension, strided buffers, an
// element type other than f32) stays as loops.
//
//===----------------------------------------------------------------------===//
#include "passes/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"
#include "mlir/IR/Builders.h"

#define DEBUG_TYPE "fem-layer-matmul"

namespace mlir::fem {
#define GEN_PASS_DEF_FEMLAYERMATMUL
#include "passes/Passes.h.inc"
} // namespace mlir::fem

using namespace mlir;
using namespace mlir::fem;

namespace {

/// Rows of the register block and rows per workgroup.
constexpr int64_t kMR = 6;
constexpr int64_t kMB = 8 * kMR;

/// A contraction C(M,N) += A(M,K)·B in the loop dimensions of a generic.
struct Contraction {
  linalg::GenericOp op;
  Value a, b, c;
  /// B is (N, K) (nn.Linear's W) rather than (K, N).
  bool transposedB;
  /// Reassociation that collapses each operand to its matrix.
  SmallVector<ReassociationIndices> groupsA, groupsB, groupsC;
};

/// True if the body is `yield acc + a * b` (either order of each).
static bool isMulAdd(linalg::GenericOp op) {
  Block &body = op.getRegion().front();
  if (body.getNumArguments() != 3 || body.getOperations().size() != 3)
    return false;
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  auto add = yield.getOperand(0).getDefiningOp<arith::AddFOp>();
  if (!add)
    return false;
  Value acc = body.getArgument(2);
  Value prod = add.getLhs() == acc ? add.getRhs() : add.getLhs();
  if (add.getLhs() != acc && add.getRhs() != acc)
    return false;
  auto mul = prod.getDefiningOp<arith::MulFOp>();
  if (!mul)
    return false;
  Value x = body.getArgument(0), y = body.getArgument(1);
  return (mul.getLhs() == x && mul.getRhs() == y) ||
         (mul.getLhs() == y && mul.getRhs() == x);
}

/// The loop dimensions of `map`'s results, if it is a projected permutation.
static std::optional<SmallVector<unsigned>> resultDims(AffineMap map) {
  if (!map.isProjectedPermutation(/*allowZeroInResults=*/false))
    return std::nullopt;
  SmallVector<unsigned> dims;
  for (AffineExpr e : map.getResults())
    dims.push_back(cast<AffineDimExpr>(e).getPosition());
  return dims;
}

/// Groups [0, first) and [first, size) as a reassociation into two.
static SmallVector<ReassociationIndices> twoGroups(int64_t first,
                                                   int64_t size) {
  ReassociationIndices outer, inner;
  for (int64_t i = 0; i < size; ++i)
    (i < first ? outer : inner).push_back(i);
  return {outer, inner};
}

static bool isContiguousF32(Value v) {
  auto t = dyn_cast<MemRefType>(v.getType());
  return t && t.getElementType().isF32() && t.getLayout().isIdentity() &&
         t.getRank() >= 2;
}

/// Matches op as C(M,N) += A(M,K)·B with every operand collapsible.
static std::optional<Contraction> matchContraction(linalg::GenericOp op) {
  if (op.getNumDpsInputs() != 2 || op.getNumDpsInits() != 1 ||
      !op.hasPureBufferSemantics() || !isMulAdd(op))
    return std::nullopt;
  FailureOr<linalg::ContractionDimensions> dims =
      linalg::inferContractionDims(op);
  if (failed(dims) || !dims->batch.empty() || dims->m.empty() ||
      dims->n.empty() || dims->k.empty())
    return std::nullopt;
  Contraction c{op, op.getDpsInputs()[0], op.getDpsInputs()[1],
                op.getDpsInits()[0], false, {}, {}, {}};
  for (Value v : {c.a, c.b, c.c})
    if (!isContiguousF32(v))
      return std::nullopt;
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  auto da = resultDims(maps[0]), db = resultDims(maps[1]),
       dc = resultDims(maps[2]);
  if (!da || !db || !dc)
    return std::nullopt;
  auto isIn = [](ArrayRef<unsigned> set, unsigned d) {
    return llvm::is_contained(set, d);
  };
  // The input holding the M dims is A (swap if written B·A).
  if (!da->empty() && !isIn(dims->m, (*da)[0])) {
    std::swap(c.a, c.b);
    std::swap(da, db);
  }
  // C = [m..., n...], A = [m..., k...] in the same m order.
  size_t nm = dims->m.size(), nn = dims->n.size(), nk = dims->k.size();
  if (dc->size() != nm + nn || da->size() != nm + nk || db->size() != nk + nn)
    return std::nullopt;
  for (size_t i = 0; i < nm; ++i)
    if (!isIn(dims->m, (*dc)[i]) || (*da)[i] != (*dc)[i])
      return std::nullopt;
  for (size_t i = 0; i < nn; ++i)
    if (!isIn(dims->n, (*dc)[nm + i]))
      return std::nullopt;
  ArrayRef<unsigned> kOrder = ArrayRef(*da).drop_front(nm);
  for (unsigned d : kOrder)
    if (!isIn(dims->k, d))
      return std::nullopt;
  ArrayRef<unsigned> nOrder = ArrayRef(*dc).drop_front(nm);
  // B = [k..., n...] or [n..., k...], in A's k order and C's n order.
  ArrayRef<unsigned> bd = *db;
  if (bd.take_front(nk) == kOrder && bd.drop_front(nk) == nOrder) {
    c.transposedB = false;
    c.groupsB = twoGroups(nk, nk + nn);
  } else if (bd.take_front(nn) == nOrder && bd.drop_front(nn) == kOrder) {
    c.transposedB = true;
    c.groupsB = twoGroups(nn, nk + nn);
  } else {
    return std::nullopt;
  }
  c.groupsA = twoGroups(nm, nm + nk);
  c.groupsC = twoGroups(nm, nm + nn);
  return c;
}

/// Vector lanes for the module's target: the features femc stamps on the
/// module (fem.target_features), else the host's.
static int64_t vectorLanes(ModuleOp module) {
  if (auto features = module->getAttrOfType<StringAttr>("fem.target_features")) {
    StringRef f = features.getValue();
    if (f.contains("+avx512f"))
      return 16;
    if (f.contains("+avx2") || f.contains("+avx"))
      return 8;
    return 4;
  }
  return defaultVectorWidth("host");
}

/// Builds the stage functions of one layer.
class StageBuilder {
public:
  StageBuilder(ModuleOp module, func::FuncOp layer, StringRef name,
               int64_t vec)
      : ctx(module.getContext()), layer(layer), name(name.str()), vec(vec) {}

  /// `<layer>_<stage>_run`, creating the workgroup function and the run
  /// declaration on first use.
  func::FuncOp run(StringRef stage) {
    std::string runName = name + "_" + stage.str() + "_run";
    auto module = layer->getParentOfType<ModuleOp>();
    if (auto f = module.lookupSymbol<func::FuncOp>(runName))
      return f;
    OpBuilder mb(ctx);
    mb.setInsertionPointAfter(layer);
    Location loc = layer.getLoc();
    Type m2 = MemRefType::get({ShapedType::kDynamic, ShapedType::kDynamic},
                              Float32Type::get(ctx));
    Type m3 = MemRefType::get(
        {ShapedType::kDynamic, ShapedType::kDynamic, ShapedType::kDynamic},
        Float32Type::get(ctx));
    Type index = IndexType::get(ctx);
    SmallVector<Type> buffers =
        stage == "mm" ? SmallVector<Type>{m2, m3, m2} : SmallVector<Type>{m2, m3};
    SmallVector<Type> wgArgs(buffers);
    wgArgs.push_back(index);
    std::string wgName = name + "_" + stage.str() + "_wg";
    auto wg = func::FuncOp::create(mb, loc, wgName,
                                   FunctionType::get(ctx, wgArgs, {}));
    wg->setAttr("llvm.emit_c_interface", UnitAttr::get(ctx));
    wg->setAttr("fem.stage", StringAttr::get(ctx, stage));
    Block *entry = wg.addEntryBlock();
    OpBuilder b = OpBuilder::atBlockBegin(entry);
    if (stage == "mm")
      buildMatmul(b, loc, entry->getArguments());
    else
      buildPack(b, loc, entry->getArguments(), stage == "mm_pack_nt");
    func::ReturnOp::create(b, loc);

    SmallVector<Type> runArgs(buffers);
    runArgs.push_back(index);
    mb.setInsertionPointAfter(wg);
    auto runFn = func::FuncOp::create(mb, loc, runName,
                                      FunctionType::get(ctx, runArgs, {}));
    runFn.setPrivate();
    runFn->setAttr("llvm.emit_c_interface", UnitAttr::get(ctx));
    runFn->setAttr("fem.stage", StringAttr::get(ctx, wgName));
    return runFn;
  }

private:
  Value cst(OpBuilder &b, Location loc, int64_t v) {
    return arith::ConstantIndexOp::create(b, loc, v);
  }
  VectorType vecType() { return VectorType::get({vec}, Float32Type::get(ctx)); }
  VectorType maskType() {
    return VectorType::get({vec}, IntegerType::get(ctx, 1));
  }

  /// P[i, k, 0:NR] = B columns [i·NR, i·NR + NR) of row k (zero past N);
  /// transposed: B is (N, K) and P[i, k, j] = B[i·NR + j, k].
  void buildPack(OpBuilder &b, Location loc, ValueRange args, bool nt) {
    Value B = args[0], P = args[1], i = args[2];
    Value c0 = cst(b, loc, 0), c1 = cst(b, loc, 1);
    int64_t nr = 2 * vec;
    Value K = memref::DimOp::create(b, loc, B, nt ? 1 : 0);
    Value N = memref::DimOp::create(b, loc, B, nt ? 0 : 1);
    Value n0 = arith::MulIOp::create(b, loc, i, cst(b, loc, nr));
    Value left = arith::SubIOp::create(b, loc, N, n0);
    if (!nt) {
      Value m0 = vector::CreateMaskOp::create(b, loc, maskType(),
                                              ValueRange{left});
      Value left1 = arith::SubIOp::create(b, loc, left, cst(b, loc, vec));
      Value m1 = vector::CreateMaskOp::create(b, loc, maskType(),
                                              ValueRange{left1});
      Value zero = arith::ConstantOp::create(
          b, loc, DenseElementsAttr::get(vecType(), 0.0f));
      Value n1 = arith::AddIOp::create(b, loc, n0, cst(b, loc, vec));
      scf::ForOp::create(
          b, loc, c0, K, c1, ValueRange{},
          [&](OpBuilder &fb, Location l, Value k, ValueRange) {
            Value v0 = vector::MaskedLoadOp::create(fb, l, vecType(), B,
                                                    ValueRange{k, n0}, m0, zero);
            Value v1 = vector::MaskedLoadOp::create(fb, l, vecType(), B,
                                                    ValueRange{k, n1}, m1, zero);
            vector::StoreOp::create(fb, l, v0, P, ValueRange{i, k, c0});
            vector::StoreOp::create(fb, l, v1, P,
                                    ValueRange{i, k, cst(fb, l, vec)});
            scf::YieldOp::create(fb, l);
          });
      return;
    }
    // Transposed: column j of the panel is row n0 + j of B (zeros past N).
    Value cols = arith::MinSIOp::create(b, loc, left, cst(b, loc, nr));
    Value fzero = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0.0f));
    scf::ForOp::create(
        b, loc, c0, K, c1, ValueRange{},
        [&](OpBuilder &fb, Location l, Value k, ValueRange) {
          scf::ForOp::create(
              fb, l, cols, cst(fb, l, nr), c1, ValueRange{},
              [&](OpBuilder &gb, Location l2, Value j, ValueRange) {
                memref::StoreOp::create(gb, l2, fzero, P, ValueRange{i, k, j});
                scf::YieldOp::create(gb, l2);
              });
          scf::YieldOp::create(fb, l);
        });
    scf::ForOp::create(
        b, loc, c0, cols, c1, ValueRange{},
        [&](OpBuilder &fb, Location l, Value j, ValueRange) {
          Value n = arith::AddIOp::create(fb, l, n0, j);
          scf::ForOp::create(
              fb, l, c0, K, c1, ValueRange{},
              [&](OpBuilder &gb, Location l2, Value k, ValueRange) {
                Value v = memref::LoadOp::create(gb, l2, B, ValueRange{n, k});
                memref::StoreOp::create(gb, l2, v, P, ValueRange{i, k, j});
                scf::YieldOp::create(gb, l2);
              });
          scf::YieldOp::create(fb, l);
        });
  }

  /// Rows [i·MB, min(M, i·MB + MB)) of C += A·P.
  void buildMatmul(OpBuilder &b, Location loc, ValueRange args) {
    Value A = args[0], P = args[1], C = args[2], i = args[3];
    Value c0 = cst(b, loc, 0), c1 = cst(b, loc, 1);
    int64_t nr = 2 * vec;
    Value M = memref::DimOp::create(b, loc, A, 0);
    Value K = memref::DimOp::create(b, loc, A, 1);
    Value N = memref::DimOp::create(b, loc, C, 1);
    Value NP = memref::DimOp::create(b, loc, P, 0);
    Value r0 = arith::MulIOp::create(b, loc, i, cst(b, loc, kMB));
    Value rEnd = arith::MinSIOp::create(
        b, loc, M, arith::AddIOp::create(b, loc, r0, cst(b, loc, kMB)));
    // Rows in whole MR blocks.
    Value rows = arith::SubIOp::create(b, loc, rEnd, r0);
    Value whole = arith::MulIOp::create(
        b, loc,
        arith::DivUIOp::create(b, loc, rows, cst(b, loc, kMR)).getResult(),
        cst(b, loc, kMR));
    Value rSplit = arith::AddIOp::create(b, loc, r0, whole);
    scf::ForOp::create(
        b, loc, c0, NP, c1, ValueRange{},
        [&](OpBuilder &pb, Location l, Value p, ValueRange) {
          Value n0 = arith::MulIOp::create(pb, l, p, cst(pb, l, nr));
          Value n1 = arith::AddIOp::create(pb, l, n0, cst(pb, l, vec));
          Value left = arith::SubIOp::create(pb, l, N, n0);
          Value left1 = arith::SubIOp::create(pb, l, left, cst(pb, l, vec));
          Value m0 = vector::CreateMaskOp::create(pb, l, maskType(),
                                                  ValueRange{left});
          Value m1 = vector::CreateMaskOp::create(pb, l, maskType(),
                                                  ValueRange{left1});
          Panel panel{A, P, C, K, p, n0, n1, m0, m1};
          scf::ForOp::create(
              pb, l, r0, rSplit, cst(pb, l, kMR), ValueRange{},
              [&](OpBuilder &rb, Location l2, Value r, ValueRange) {
                block(rb, l2, panel, r, kMR);
                scf::YieldOp::create(rb, l2);
              });
          scf::ForOp::create(
              pb, l, rSplit, rEnd, c1, ValueRange{},
              [&](OpBuilder &rb, Location l2, Value r, ValueRange) {
                block(rb, l2, panel, r, 1);
                scf::YieldOp::create(rb, l2);
              });
          scf::YieldOp::create(pb, l);
        });
  }

  struct Panel {
    Value A, P, C, K, p, n0, n1, m0, m1;
  };

  /// C[r .. r+R, panel] += A[r .. r+R, :] · P[p]: 2R accumulators.
  void block(OpBuilder &b, Location loc, const Panel &pn, Value r,
             int64_t R) {
    Value c0 = cst(b, loc, 0), c1 = cst(b, loc, 1), cv = cst(b, loc, vec);
    Value zero = arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(vecType(), 0.0f));
    SmallVector<Value> rowsIdx, acc;
    for (int64_t rr = 0; rr < R; ++rr) {
      Value row = rr ? arith::AddIOp::create(b, loc, r, cst(b, loc, rr))
                           .getResult()
                     : r;
      rowsIdx.push_back(row);
      acc.push_back(vector::MaskedLoadOp::create(
          b, loc, vecType(), pn.C, ValueRange{row, pn.n0}, pn.m0, zero));
      acc.push_back(vector::MaskedLoadOp::create(
          b, loc, vecType(), pn.C, ValueRange{row, pn.n1}, pn.m1, zero));
    }
    auto loop = scf::ForOp::create(
        b, loc, c0, pn.K, c1, acc,
        [&](OpBuilder &kb, Location l, Value k, ValueRange in) {
          Value b0 = vector::LoadOp::create(kb, l, vecType(), pn.P,
                                            ValueRange{pn.p, k, c0});
          Value b1 = vector::LoadOp::create(kb, l, vecType(), pn.P,
                                            ValueRange{pn.p, k, cv});
          SmallVector<Value> out;
          for (int64_t rr = 0; rr < R; ++rr) {
            Value a = memref::LoadOp::create(kb, l, pn.A,
                                             ValueRange{rowsIdx[rr], k});
            Value av = vector::BroadcastOp::create(kb, l, vecType(), a);
            out.push_back(
                vector::FMAOp::create(kb, l, av, b0, in[2 * rr]).getResult());
            out.push_back(vector::FMAOp::create(kb, l, av, b1, in[2 * rr + 1])
                              .getResult());
          }
          scf::YieldOp::create(kb, l, out);
        });
    for (int64_t rr = 0; rr < R; ++rr) {
      vector::MaskedStoreOp::create(b, loc, pn.C,
                                    ValueRange{rowsIdx[rr], pn.n0}, pn.m0,
                                    loop.getResult(2 * rr));
      vector::MaskedStoreOp::create(b, loc, pn.C,
                                    ValueRange{rowsIdx[rr], pn.n1}, pn.m1,
                                    loop.getResult(2 * rr + 1));
    }
  }

  MLIRContext *ctx;
  func::FuncOp layer;
  std::string name;
  int64_t vec;
};

/// memref<?x?xf32> of `v` collapsed by `groups` (a cast if already 2-D).
static Value asMatrix(OpBuilder &b, Location loc, Value v,
                      ArrayRef<ReassociationIndices> groups) {
  auto t = cast<MemRefType>(v.getType());
  Value m = v;
  if (t.getRank() != 2)
    m = memref::CollapseShapeOp::create(b, loc, v, groups);
  auto dyn = MemRefType::get({ShapedType::kDynamic, ShapedType::kDynamic},
                             t.getElementType());
  if (m.getType() != dyn)
    m = memref::CastOp::create(b, loc, dyn, m);
  return m;
}

struct FEMLayerMatmulPass
    : public fem::impl::FEMLayerMatmulBase<FEMLayerMatmulPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    int64_t vec = vectorLanes(module);
    SmallVector<func::FuncOp> layers;
    for (auto f : module.getOps<func::FuncOp>())
      if (!f.isExternal() && f->hasAttr("fem.layer"))
        layers.push_back(f);
    for (func::FuncOp f : layers) {
      auto name = f->getAttrOfType<StringAttr>("fem.layer");
      if (!name)
        continue;
      SmallVector<Contraction> found;
      f.walk([&](linalg::GenericOp op) {
        if (auto c = matchContraction(op))
          found.push_back(*c);
      });
      if (found.empty())
        continue;
      StageBuilder stages(module, f, name.getValue(), vec);
      for (Contraction &c : found)
        rewrite(c, stages, vec);
    }
  }

  void rewrite(Contraction &c, StageBuilder &stages, int64_t vec) {
    OpBuilder b(c.op);
    Location loc = c.op.getLoc();
    int64_t nr = 2 * vec;
    Value A = asMatrix(b, loc, c.a, c.groupsA);
    Value B = asMatrix(b, loc, c.b, c.groupsB);
    Value C = asMatrix(b, loc, c.c, c.groupsC);
    Value M = memref::DimOp::create(b, loc, A, 0);
    Value K = memref::DimOp::create(b, loc, A, 1);
    Value N = memref::DimOp::create(b, loc, C, 1);
    auto ceilDiv = [&](Value x, int64_t d) -> Value {
      Value plus = arith::AddIOp::create(
          b, loc, x, arith::ConstantIndexOp::create(b, loc, d - 1));
      return arith::DivUIOp::create(
          b, loc, plus, arith::ConstantIndexOp::create(b, loc, d));
    };
    Value panels = ceilDiv(N, nr);
    auto packedType = MemRefType::get(
        {ShapedType::kDynamic, ShapedType::kDynamic, nr}, b.getF32Type());
    Value packed = memref::AllocOp::create(b, loc, packedType,
                                           ValueRange{panels, K},
                                           b.getI64IntegerAttr(64));
    auto dyn3 = MemRefType::get(
        {ShapedType::kDynamic, ShapedType::kDynamic, ShapedType::kDynamic},
        b.getF32Type());
    Value packedDyn = memref::CastOp::create(b, loc, dyn3, packed);
    func::FuncOp pack =
        stages.run(c.transposedB ? "mm_pack_nt" : "mm_pack_nn");
    func::CallOp::create(b, loc, pack, ValueRange{B, packedDyn, panels});
    func::FuncOp mm = stages.run("mm");
    func::CallOp::create(b, loc, mm,
                         ValueRange{A, packedDyn, C, ceilDiv(M, kMB)});
    memref::DeallocOp::create(b, loc, packed);
    c.op.erase();
  }
};
} // namespace
