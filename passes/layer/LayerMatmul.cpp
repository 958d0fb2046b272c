//===- LayerMatmul.cpp - layer projections → packed, blocked matmul stages
//-===//
//
// The projections of a layer (nn.Linear's y = x·Wᵀ + b, the per-head
// forms x(B,T,D)·W(D,H,d), the output projection o(B,T,H,d)·Wo(H,d,D))
// are linalg contractions. Lowered to loops they run one scalar
// multiply-add at a time: 8-14x slower than PyTorch for a whole layer.
// This pass, on bufferized layer functions, replaces each such contraction
// C(M,N) += A(M,K)·B (B as (K,N) or as (N,K)) by two parallel stages:
//
//   pack:   B → P (⌈N/NR⌉, K, NR), NR = 2 vectors, zero-padded columns;
//           one workgroup per column panel; and A → Ap (⌈M/MR⌉, K, MR),
//           a register block's MR rows of one k adjacent (read as one
//           stream; in place they are K floats apart, with K = 1024 all
//           in one L1 set; packed a vector of k at a time, transposed in
//           shuffles), one workgroup per block, once for all the
//           contractions that read the same A (a layer's q, k, v, λ and
//           gate projections of x) unless something between them may
//           write it;
//   matmul: one workgroup per tile of C (about 256 x 128: whole register
//           blocks of rows, whole panels); for each K block of kc = 512,
//           for each register block of MR rows (its slice of Ap stays in
//           L1), for each panel (streaming from L2), an MR x NR register
//           block (AVX-512: MR = 14, 28 accumulators of the 32 registers;
//           16 registers: MR = 6) initialised from C, so a bias or zero
//           fill before the contraction is kept, walks the K block with
//           one broadcast of A and two loads of P per row pair of FMAs;
//           edge columns are masked, the rows left below MR run as blocks
//           of the powers of two below MR.
//
// passes/layer/LayerMatmulBlocking.h holds the blocking and the stage
// grids (shared with the stage tests and bench/matmul_stage_bench.cpp).
// The workgroup functions are public (`<layer>_mm_pack_a_wg`,
// `<layer>_mm_pack_nn_wg`, `<layer>_mm_pack_nt_wg`, `<layer>_mm_wg(Ap, P,
// C, i)`, attribute `fem.stage`); the
// layer calls `<layer>_mm_*_run(buffers..., count)`, which the driver's
// glue implements by running the workgroups 0..count-1 on libfemrt's pool
// (see docs/architecture.md, "Layers"). A contraction whose operands do
// not collapse to those matrices (a batch dimension, strided buffers, an
// element type other than f32) stays as loops.
//
//===----------------------------------------------------------------------===//
#include "passes/Passes.h"
#include "passes/layer/LayerMatmulAmx.h"
#include "passes/layer/LayerMatmulBlocking.h"
#include "passes/layer/LayerStage.h"

#include "mlir/Dialect/AMX/AMXDialect.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/UB/IR/UBOps.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/Transforms/LoweringPatterns.h"
#include "mlir/Dialect/Vector/Transforms/VectorRewritePatterns.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/TilingInterface.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/SmallBitVector.h"

#define DEBUG_TYPE "fem-layer-matmul"

namespace mlir::fem {
#define GEN_PASS_DEF_FEMLAYERMATMUL
#include "passes/Passes.h.inc"
} // namespace mlir::fem

using namespace mlir;
using namespace mlir::fem;

namespace {

/// k steps per iteration of the matmul's inner loop.
constexpr int64_t kUnroll = 4;

using femc::layer::MatmulBlocking;
using mlir::fem::layer::declareStage;
using mlir::fem::layer::rootBuffer;
using femc::layer::MatmulPrecision;

/// The precision `auto` picks: bf16x6 on AMX-BF16 targets (its error is an
/// f32 dot product's, docs/layers.md), f32 elsewhere.
static MatmulPrecision defaultMatmulPrecision(bool amxTarget) {
  return amxTarget ? MatmulPrecision::Bf16x6 : MatmulPrecision::F32;
}

static MatmulBlocking matmulBlockingFor(int64_t lanes) {
  return femc::layer::matmulBlocking(lanes);
}

/// The matmul stage's tiles (LayerMatmulBlocking.h) as index IR, from M,
/// N and the number of panels ⌈N / panel⌉: rows and panels of a tile, tiles
/// along N, and the stage's workgroups.
struct TileGrid {
  Value rows, panels, colTiles, count;
};
static TileGrid tileGrid(OpBuilder &b, Location loc, Value M, Value N,
                         Value panels, const MatmulBlocking &blk) {
  auto idx = [&](int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); };
  auto ceilDiv = [&](Value x, Value d) -> Value {
    return arith::DivUIOp::create(
        b, loc,
        arith::AddIOp::create(b, loc, x,
                              arith::SubIOp::create(b, loc, d, idx(1))),
        d);
  };
  auto atLeast1 = [&](Value v) -> Value {
    return arith::MaxSIOp::create(b, loc, v, idx(1));
  };
  Value rowShares = atLeast1(ceilDiv(M, idx(MatmulBlocking::kTileRows)));
  Value rows = arith::MulIOp::create(
      b, loc, atLeast1(ceilDiv(ceilDiv(M, idx(blk.rows)), rowShares)),
      idx(blk.rows));
  Value colShares = atLeast1(ceilDiv(N, idx(MatmulBlocking::kTileCols)));
  Value per = atLeast1(ceilDiv(panels, colShares));
  Value colTiles = ceilDiv(panels, per);
  Value count = arith::MulIOp::create(b, loc, ceilDiv(M, rows), colTiles);
  return {rows, per, colTiles, count};
}

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

/// Vector lanes for the module's target: defaultVectorWidth(target) where
/// the pass is given one (femc gives it its target's); else the features
/// femc stamps on the module (fem.target_features) where they name a vector extension; else
/// the width fem-tile chose for the module's FEM reads (their #fem.tiles:
/// the target's, e.g. 16 for --target=x86-64-v4, whose features are its
/// CPU's and not in the string); else 4 for a module with features and the
/// host's without.
static int64_t vectorLanes(ModuleOp module, StringRef target) {
  if (!target.empty())
    return defaultVectorWidth(target);
  auto features = module->getAttrOfType<StringAttr>("fem.target_features");
  if (features) {
    StringRef f = features.getValue();
    if (f.contains("+avx512f"))
      return 16;
    if (f.contains("+avx2") || f.contains("+avx"))
      return 8;
  }
  int64_t fromReads = 0;
  module.walk([&](Operation *op) {
    if (auto tiles = op->getAttrOfType<TilesAttr>("tiles")) {
      fromReads = tiles.getVec();
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  if (fromReads == 4 || fromReads == 8 || fromReads == 16)
    return fromReads;
  return features ? 4 : defaultVectorWidth("host");
}

/// Builds the stage functions of one layer.
class StageBuilder {
public:
  StageBuilder(ModuleOp module, func::FuncOp layer, StringRef name,
               int64_t vec, femc::layer::AmxBlocking amx)
      : ctx(module.getContext()), layer(layer), name(name.str()), vec(vec),
        blk(matmulBlockingFor(vec)), amx(amx) {}

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
    // The packed panels, (panels, K, panel): the panel width static, so P's
    // k stride is a constant in the stages (an index multiply per k step
    // otherwise).
    Type m3 = MemRefType::get(
        {ShapedType::kDynamic, ShapedType::kDynamic, blk.panel()},
        Float32Type::get(ctx));
    // The packed A, (row blocks, K, rows): a block's rows of one k
    // adjacent.
    Type ma =
        MemRefType::get({ShapedType::kDynamic, ShapedType::kDynamic, blk.rows},
                        Float32Type::get(ctx));
    Type packed = fem::layer::amxPackedType(ctx);
    SmallVector<Type> buffers =
        stage == "mm"               ? SmallVector<Type>{ma, m3, m2}
        : stage == "mm_pack_a"      ? SmallVector<Type>{m2, ma}
        : stage == "mmx"            ? SmallVector<Type>{packed, packed, m2}
        : stage.starts_with("mmx_") ? SmallVector<Type>{m2, packed}
                                    : SmallVector<Type>{m2, m3};
    auto [wg, runFn] = declareStage(mb, loc, name + "_" + stage.str(),
                                    buffers, stage);
    Block *entry = &wg.getBody().front();
    OpBuilder b = OpBuilder::atBlockBegin(entry);
    if (stage == "mm")
      buildMatmul(b, loc, entry->getArguments());
    else if (stage == "mmx")
      fem::layer::buildAmxMatmul(b, loc, entry->getArguments(), amx);
    else if (stage == "mmx_pack_a")
      fem::layer::buildAmxPackA(b, loc, entry->getArguments(), amx);
    else if (stage.starts_with("mmx_pack_"))
      fem::layer::buildAmxPackB(b, loc, entry->getArguments(), amx,
                                stage == "mmx_pack_nt");
    else if (stage == "mm_pack_a")
      buildPackA(b, loc, entry->getArguments());
    else
      buildPack(b, loc, entry->getArguments(), stage == "mm_pack_nt");
    func::ReturnOp::create(b, loc);
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
    int64_t nr = blk.panel();
    Value K = memref::DimOp::create(b, loc, B, nt ? 1 : 0);
    Value N = memref::DimOp::create(b, loc, B, nt ? 0 : 1);
    Value n0 = arith::MulIOp::create(b, loc, i, cst(b, loc, nr));
    Value left = arith::SubIOp::create(b, loc, N, n0);
    if (!nt) {
      Value zero = arith::ConstantOp::create(
          b, loc, DenseElementsAttr::get(vecType(), 0.0f));
      SmallVector<Value> masks, cols, offsets;
      for (int64_t v = 0; v < blk.vectors; ++v) {
        masks.push_back(vector::CreateMaskOp::create(
            b, loc, maskType(),
            ValueRange{arith::SubIOp::create(b, loc, left,
                                             cst(b, loc, v * vec))}));
        offsets.push_back(cst(b, loc, v * vec));
        cols.push_back(arith::AddIOp::create(b, loc, n0, offsets.back()));
      }
      scf::ForOp::create(
          b, loc, c0, K, c1, ValueRange{},
          [&](OpBuilder &fb, Location l, Value k, ValueRange) {
            for (int64_t v = 0; v < blk.vectors; ++v) {
              Value x = vector::MaskedLoadOp::create(
                  fb, l, vecType(), B, ValueRange{k, cols[v]}, masks[v], zero);
              vector::StoreOp::create(fb, l, x, P,
                                      ValueRange{i, k, offsets[v]});
            }
            scf::YieldOp::create(fb, l);
          });
      return;
    }
    // Transposed: column j of the panel is row n0 + j of B (zeros past N).
    // K in steps of one vector: each group of `vec` rows loaded as vectors
    // of `vec` k, transposed in shuffles, stored as `vec` rows of P; the
    // last K % vec steps one element at a time. Rows past N read row N - 1
    // and are replaced by zeros.
    ImplicitLocOpBuilder ib(loc, b);
    Value lastRow = arith::SubIOp::create(ib, N, c1);
    Value kFull = arith::SubIOp::create(
        ib, K, arith::RemUIOp::create(ib, K, cst(b, loc, vec)));
    Value zeroVec =
        arith::ConstantOp::create(ib, DenseElementsAttr::get(vecType(), 0.0f));
    auto rowOf = [&](ImplicitLocOpBuilder &rb, int64_t j) {
      Value n = arith::AddIOp::create(rb, n0, cst(rb, rb.getLoc(), j));
      Value valid = arith::CmpIOp::create(rb, arith::CmpIPredicate::slt, n, N);
      return std::pair{arith::MinSIOp::create(rb, n, lastRow).getResult(),
                       valid};
    };
    scf::ForOp::create(
        ib, c0, kFull, cst(b, loc, vec), ValueRange{},
        [&](OpBuilder &fb, Location l, Value k, ValueRange) {
          ImplicitLocOpBuilder kb(l, fb);
          for (int64_t v = 0; v < blk.vectors; ++v) {
            SmallVector<Value> rows;
            for (int64_t j = 0; j < vec; ++j) {
              auto [n, valid] = rowOf(kb, v * vec + j);
              Value x =
                  vector::LoadOp::create(kb, vecType(), B, ValueRange{n, k});
              rows.push_back(arith::SelectOp::create(kb, valid, x, zeroVec));
            }
            rows = fem::layer::transposeSquare(kb, std::move(rows));
            for (int64_t kk = 0; kk < vec; ++kk)
              vector::StoreOp::create(
                  kb, rows[kk], P,
                  ValueRange{i, arith::AddIOp::create(kb, k, cst(kb, l, kk)),
                             cst(kb, l, v * vec)});
          }
          scf::YieldOp::create(kb);
        });
    Value fzero = arith::ConstantOp::create(ib, ib.getF32FloatAttr(0.0f));
    scf::ForOp::create(
        ib, kFull, K, c1, ValueRange{},
        [&](OpBuilder &fb, Location l, Value k, ValueRange) {
          ImplicitLocOpBuilder kb(l, fb);
          for (int64_t j = 0; j < nr; ++j) {
            auto [n, valid] = rowOf(kb, j);
            Value x = memref::LoadOp::create(kb, B, ValueRange{n, k});
            memref::StoreOp::create(
                kb, arith::SelectOp::create(kb, valid, x, fzero), P,
                ValueRange{i, k, cst(kb, l, j)});
          }
          scf::YieldOp::create(kb);
        });
  }

  /// Ap[g, k, 0:rows] = A rows [g·rows, g·rows + rows) of column k (zero
  /// past M): the register block's rows of one k adjacent, so the matmul
  /// reads A as one stream (A in place puts the block's rows K floats
  /// apart: with K = 1024 all in one L1 set). Workgroup g packs block g,
  /// a vector of k at a time (the scalar copy before took 1.2 % of the
  /// bench layer's samples at T = 1024; docs/benchmarks.md, "Layers").
  void buildPackA(OpBuilder &b, Location loc, ValueRange args) {
    Value A = args[0], Ap = args[1], g = args[2];
    ImplicitLocOpBuilder ib(loc, b);
    Value c0 = cst(b, loc, 0), c1 = cst(b, loc, 1);
    Value M = memref::DimOp::create(ib, A, 0);
    Value K = memref::DimOp::create(ib, A, 1);
    Value r0 = arith::MulIOp::create(ib, g, cst(b, loc, blk.rows));
    Value lastRow = arith::SubIOp::create(ib, M, c1);
    Value fzero = arith::ConstantOp::create(ib, ib.getF32FloatAttr(0.0f));
    SmallVector<Value> rows, valid;
    for (int64_t rr = 0; rr < blk.rows; ++rr) {
      Value r = arith::AddIOp::create(ib, r0, cst(b, loc, rr));
      valid.push_back(
          arith::CmpIOp::create(ib, arith::CmpIPredicate::slt, r, M));
      rows.push_back(arith::MinSIOp::create(ib, r, lastRow));
    }
    // K in steps of one vector: the block's rows, `vec` at a time (zero
    // vectors past `rows`), loaded as vectors of `vec` k, transposed in
    // shuffles, and each k's lanes of those rows stored together; the last
    // K % vec steps one element at a time.
    Value kFull = arith::SubIOp::create(
        ib, K, arith::RemUIOp::create(ib, K, cst(b, loc, vec)));
    Value zeroVec =
        arith::ConstantOp::create(ib, DenseElementsAttr::get(vecType(), 0.0f));
    scf::ForOp::create(
        ib, c0, kFull, cst(b, loc, vec), ValueRange{},
        [&](OpBuilder &fb, Location l, Value k, ValueRange) {
          ImplicitLocOpBuilder kb(l, fb);
          for (int64_t base = 0; base < blk.rows; base += vec) {
            int64_t n = std::min(vec, blk.rows - base);
            SmallVector<Value> group;
            for (int64_t j = 0; j < vec; ++j) {
              if (j >= n) {
                group.push_back(zeroVec);
                continue;
              }
              Value x = vector::LoadOp::create(kb, vecType(), A,
                                               ValueRange{rows[base + j], k});
              group.push_back(
                  arith::SelectOp::create(kb, valid[base + j], x, zeroVec));
            }
            group = fem::layer::transposeSquare(kb, std::move(group));
            for (int64_t kk = 0; kk < vec; ++kk) {
              Value out = group[kk];
              if (n < vec)
                out = vector::ExtractStridedSliceOp::create(
                    kb, out, ArrayRef<int64_t>{0}, ArrayRef<int64_t>{n},
                    ArrayRef<int64_t>{1});
              vector::StoreOp::create(
                  kb, out, Ap,
                  ValueRange{g, arith::AddIOp::create(kb, k, cst(kb, l, kk)),
                             cst(kb, l, base)});
            }
          }
          scf::YieldOp::create(kb);
        });
    scf::ForOp::create(
        ib, kFull, K, c1, ValueRange{},
        [&](OpBuilder &fb, Location l, Value k, ValueRange) {
          ImplicitLocOpBuilder kb(l, fb);
          for (int64_t rr = 0; rr < blk.rows; ++rr) {
            Value x = memref::LoadOp::create(kb, A, ValueRange{rows[rr], k});
            memref::StoreOp::create(
                kb, arith::SelectOp::create(kb, valid[rr], x, fzero), Ap,
                ValueRange{g, k, cst(kb, l, rr)});
          }
          scf::YieldOp::create(kb);
        });
  }

  /// One panel of a K block: its buffers, panel index, first column, the K
  /// block [k0, k1), and the column masks (none: the panel is within N).
  struct Panel {
    Value A, P, C, p, n0, k0, k1;
    SmallVector<Value> masks;
  };

  /// Workgroup i's tile of C += A·P (tileGrid: rows [r0, r0 + MB) and
  /// panels [p0, p0 + PB), clipped to M and the panels): for each K block
  /// of kc, for each whole register block of `rows` rows, every panel (the
  /// block's slice of packed A, rows x kc floats, stays in L1 while the
  /// panels stream past it from L2); then the rows left (fewer than `rows`,
  /// only in the last row tile) as blocks of the powers of two below `rows`,
  /// each against every panel.
  void buildMatmul(OpBuilder &b, Location loc, ValueRange args) {
    Value A = args[0], P = args[1], C = args[2], i = args[3];
    Value c0 = cst(b, loc, 0);
    int64_t nr = blk.panel();
    Value M = memref::DimOp::create(b, loc, C, 0);
    Value K = memref::DimOp::create(b, loc, A, 1);
    Value N = memref::DimOp::create(b, loc, C, 1);
    Value NP = memref::DimOp::create(b, loc, P, 0);
    TileGrid grid = tileGrid(b, loc, M, N, NP, blk);
    Value mb = grid.rows;
    Value r0 = arith::MulIOp::create(
        b, loc, arith::DivUIOp::create(b, loc, i, grid.colTiles), mb);
    Value p0 = arith::MulIOp::create(
        b, loc, arith::RemUIOp::create(b, loc, i, grid.colTiles), grid.panels);
    Value pEnd = arith::MaxSIOp::create(
        b, loc, p0,
        arith::MinSIOp::create(b, loc, NP,
                               arith::AddIOp::create(b, loc, p0, grid.panels)));
    Value rEnd = arith::MaxSIOp::create(
        b, loc, r0,
        arith::MinSIOp::create(b, loc, M,
                               arith::AddIOp::create(b, loc, r0, mb)));
    Value rows = arith::SubIOp::create(b, loc, rEnd, r0);
    Value rem = arith::RemUIOp::create(b, loc, rows, cst(b, loc, blk.rows));
    Value rSplit = arith::SubIOp::create(b, loc, rEnd, rem);
    Value kc = cst(b, loc, blk.kc);
    // Panels wholly inside N run unmasked (AVX2's masked loads and stores,
    // vmaskmovps, are slow: a masked store is microcoded on AMD Zen); the
    // last panel, if N is not a multiple of the panel, masked.
    Value pFull = arith::MaxSIOp::create(
        b, loc, p0,
        arith::MinSIOp::create(
            b, loc, pEnd, arith::DivUIOp::create(b, loc, N, cst(b, loc, nr))));
    scf::ForOp::create(
        b, loc, c0, K, kc, ValueRange{},
        [&](OpBuilder &kb, Location lk, Value k0, ValueRange) {
          Value k1 = arith::MinSIOp::create(
              kb, lk, K, arith::AddIOp::create(kb, lk, k0, kc));
          // Every panel of the tile for one row block: R rows from r (row
          // lane0 of the packed A's block g).
          auto panels = [&](OpBuilder &rb, Location l, Value r, Value g,
                            Value lane0, int64_t R) {
            for (bool masked : {false, true})
              scf::ForOp::create(
                  rb, l, masked ? pFull : p0, masked ? pEnd : pFull,
                  cst(rb, l, 1), ValueRange{},
                  [&](OpBuilder &pb, Location l2, Value p, ValueRange) {
                    Value n0 =
                        arith::MulIOp::create(pb, l2, p, cst(pb, l2, nr));
                    Value left = arith::SubIOp::create(pb, l2, N, n0);
                    Panel panel{A, P, C, p, n0, k0, k1, {}};
                    for (int64_t v = 0; masked && v < blk.vectors; ++v)
                      panel.masks.push_back(vector::CreateMaskOp::create(
                          pb, l2, maskType(),
                          ValueRange{arith::SubIOp::create(
                              pb, l2, left, cst(pb, l2, v * vec))}));
                    block(pb, l2, panel, r, g, lane0, R);
                    scf::YieldOp::create(pb, l2);
                  });
          };
          scf::ForOp::create(
              kb, lk, r0, rSplit, cst(kb, lk, blk.rows), ValueRange{},
              [&](OpBuilder &rb, Location l, Value r, ValueRange) {
                Value g =
                    arith::DivUIOp::create(rb, l, r, cst(rb, l, blk.rows));
                panels(rb, l, r, g, cst(rb, l, 0), blk.rows);
                scf::YieldOp::create(rb, l);
              });
          // The rows left as blocks of the powers of two below `rows`, the
          // largest first.
          for (int64_t s = llvm::PowerOf2Ceil(blk.rows) / 2; s >= 1; s /= 2) {
            if (s >= blk.rows)
              continue;
            Value bit = arith::AndIOp::create(kb, lk, rem, cst(kb, lk, s));
            Value set = arith::CmpIOp::create(kb, lk, arith::CmpIPredicate::ne,
                                              bit, c0);
            Value above =
                arith::AndIOp::create(kb, lk, rem, cst(kb, lk, ~(2 * s - 1)));
            Value r = arith::AddIOp::create(kb, lk, rSplit, above);
            auto ifOp = scf::IfOp::create(kb, lk, set);
            OpBuilder ib = OpBuilder::atBlockBegin(ifOp.thenBlock());
            ib.setInsertionPoint(ifOp.thenBlock()->getTerminator());
            Value g =
                arith::DivUIOp::create(ib, lk, rSplit, cst(ib, lk, blk.rows));
            panels(ib, lk, r, g, above, s);
          }
          scf::YieldOp::create(kb, lk);
        });
  }

  /// C[r .. r+R, panel] += A[r .. r+R, k0:k1] · P[p, k0:k1]: R·vectors
  /// accumulators, loaded from C and stored back (masked past N when the
  /// panel has masks). Row r + j of A is the packed A's block g, lane
  /// lane0 + j (r = g·rows + lane0).
  void block(OpBuilder &b, Location loc, const Panel &pn, Value r, Value g,
             Value lane0, int64_t R) {
    int64_t nv = blk.vectors;
    Value zero = arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(vecType(), 0.0f));
    SmallVector<Value> rowsIdx, lanes, cols, acc;
    for (int64_t v = 0; v < nv; ++v)
      cols.push_back(v ? arith::AddIOp::create(b, loc, pn.n0,
                                               cst(b, loc, v * vec))
                             .getResult()
                       : pn.n0);
    for (int64_t rr = 0; rr < R; ++rr) {
      Value row = rr ? arith::AddIOp::create(b, loc, r, cst(b, loc, rr))
                           .getResult()
                     : r;
      rowsIdx.push_back(row);
      lanes.push_back(
          rr ? arith::AddIOp::create(b, loc, lane0, cst(b, loc, rr)).getResult()
             : lane0);
      for (int64_t v = 0; v < nv; ++v)
        acc.push_back(pn.masks.empty()
                          ? vector::LoadOp::create(b, loc, vecType(), pn.C,
                                                   ValueRange{row, cols[v]})
                                .getResult()
                          : vector::MaskedLoadOp::create(
                                b, loc, vecType(), pn.C,
                                ValueRange{row, cols[v]}, pn.masks[v], zero)
                                .getResult());
    }
    SmallVector<Value> offsets;
    for (int64_t v = 0; v < nv; ++v)
      offsets.push_back(cst(b, loc, v * vec));
    // One k step: two panel vectors, one broadcast of A per row.
    auto step = [&](OpBuilder &kb, Location l, Value k, ValueRange in) {
      SmallVector<Value> bv;
      for (int64_t v = 0; v < nv; ++v)
        bv.push_back(vector::LoadOp::create(kb, l, vecType(), pn.P,
                                            ValueRange{pn.p, k, offsets[v]}));
      SmallVector<Value> out;
      for (int64_t rr = 0; rr < R; ++rr) {
        Value a =
            memref::LoadOp::create(kb, l, pn.A, ValueRange{g, k, lanes[rr]});
        Value av = vector::BroadcastOp::create(kb, l, vecType(), a);
        for (int64_t v = 0; v < nv; ++v)
          out.push_back(vector::FMAOp::create(kb, l, av, bv[v], in[rr * nv + v])
                            .getResult());
      }
      return out;
    };
    // The K block in kUnroll steps per iteration (their addresses one
    // computation plus constant offsets), then the steps left one at a time;
    // each accumulator sums the same products in the same order.
    Value len = arith::SubIOp::create(b, loc, pn.k1, pn.k0);
    Value kSplit = arith::SubIOp::create(
        b, loc, pn.k1,
        arith::RemUIOp::create(b, loc, len, cst(b, loc, kUnroll)));
    auto unrolled = scf::ForOp::create(
        b, loc, pn.k0, kSplit, cst(b, loc, kUnroll), acc,
        [&](OpBuilder &kb, Location l, Value k, ValueRange in) {
          SmallVector<Value> cur(in);
          for (int64_t u = 0; u < kUnroll; ++u)
            cur = step(
                kb, l,
                u ? arith::AddIOp::create(kb, l, k, cst(kb, l, u)).getResult()
                  : k,
                cur);
          scf::YieldOp::create(kb, l, cur);
        });
    auto loop = scf::ForOp::create(
        b, loc, kSplit, pn.k1, cst(b, loc, 1), unrolled.getResults(),
        [&](OpBuilder &kb, Location l, Value k, ValueRange in) {
          scf::YieldOp::create(kb, l, step(kb, l, k, in));
        });
    for (int64_t rr = 0; rr < R; ++rr)
      for (int64_t v = 0; v < nv; ++v) {
        Value out = loop.getResult(rr * nv + v);
        if (pn.masks.empty())
          vector::StoreOp::create(b, loc, out, pn.C,
                                  ValueRange{rowsIdx[rr], cols[v]});
        else
          vector::MaskedStoreOp::create(
              b, loc, pn.C, ValueRange{rowsIdx[rr], cols[v]}, pn.masks[v], out);
      }
  }

  MLIRContext *ctx;
  func::FuncOp layer;
  std::string name;
  int64_t vec;
  femc::layer::MatmulBlocking blk;
  femc::layer::AmxBlocking amx;
};

/// `e` as `d_outer * S + d_inner` (either order of the sum and of the
/// product), with S a constant.
struct Linearised {
  unsigned outer, inner;
  int64_t stride;
};
static std::optional<Linearised> matchLinearised(AffineExpr e) {
  auto add = dyn_cast<AffineBinaryOpExpr>(e);
  if (!add || add.getKind() != AffineExprKind::Add)
    return std::nullopt;
  for (auto [mulE, innerE] : {std::pair{add.getLHS(), add.getRHS()},
                              std::pair{add.getRHS(), add.getLHS()}}) {
    auto inner = dyn_cast<AffineDimExpr>(innerE);
    auto mul = dyn_cast<AffineBinaryOpExpr>(mulE);
    if (!inner || !mul || mul.getKind() != AffineExprKind::Mul)
      continue;
    for (auto [dimE, cstE] : {std::pair{mul.getLHS(), mul.getRHS()},
                              std::pair{mul.getRHS(), mul.getLHS()}}) {
      auto dim = dyn_cast<AffineDimExpr>(dimE);
      auto c = dyn_cast<AffineConstantExpr>(cstE);
      if (dim && c && c.getValue() > 0)
        return Linearised{dim.getPosition(), inner.getPosition(),
                          c.getValue()};
    }
  }
  return std::nullopt;
}

/// Hand-written layers index a weight's flat channel as `h * d + c` (heads
/// split by the indexing map instead of a reshape). Where the loop c runs
/// over exactly [0, d) and the operand's extent there is a static multiple
/// of d, that operand is the same buffer expanded to (.., extent / d, d, ..)
/// indexed by (h, c): the natural form the contraction matcher takes. The
/// rewrite is in place on the generic (buffers only, identity layouts).
static void delinearise(linalg::GenericOp op) {
  if (!op.hasPureBufferSemantics())
    return;
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  bool changed = false;
  for (OpOperand &operand : op->getOpOperands()) {
    auto type = dyn_cast<MemRefType>(operand.get().getType());
    if (!type || !type.getLayout().isIdentity())
      continue;
    AffineMap map = maps[operand.getOperandNumber()];
    SmallVector<AffineExpr> results;
    SmallVector<int64_t> shape;
    SmallVector<ReassociationIndices> groups;
    bool rewrote = false;
    for (auto [j, e] : llvm::enumerate(map.getResults())) {
      int64_t extent = type.getDimSize(j);
      std::optional<Linearised> lin = matchLinearised(e);
      ReassociationIndices group{static_cast<int64_t>(shape.size())};
      if (lin && !ShapedType::isDynamic(extent) &&
          lin->outer != lin->inner && ranges[lin->inner] == lin->stride &&
          extent % lin->stride == 0) {
        group.push_back(shape.size() + 1);
        shape.append({extent / lin->stride, lin->stride});
        results.append({getAffineDimExpr(lin->outer, op.getContext()),
                        getAffineDimExpr(lin->inner, op.getContext())});
        rewrote = true;
      } else {
        shape.push_back(extent);
        results.push_back(e);
      }
      groups.push_back(group);
    }
    if (!rewrote)
      continue;
    OpBuilder b(op);
    Location loc = op.getLoc();
    auto expandedType = MemRefType::get(shape, type.getElementType(),
                                        MemRefLayoutAttrInterface(),
                                        type.getMemorySpace());
    SmallVector<OpFoldResult> outputShape;
    for (auto [j, group] : llvm::enumerate(groups))
      for (int64_t k : group)
        outputShape.push_back(
            ShapedType::isDynamic(shape[k])
                ? OpFoldResult(
                      memref::DimOp::create(b, loc, operand.get(), j)
                          .getResult())
                : OpFoldResult(b.getIndexAttr(shape[k])));
    Value expanded = memref::ExpandShapeOp::create(
        b, loc, expandedType, operand.get(), groups, outputShape);
    operand.set(expanded);
    maps[operand.getOperandNumber()] =
        AffineMap::get(map.getNumDims(), map.getNumSymbols(), results,
                       op.getContext());
    changed = true;
  }
  if (changed)
    op.setIndexingMapsAttr(
        ArrayAttr::get(op.getContext(),
                       llvm::map_to_vector(maps, [](AffineMap m) -> Attribute {
                         return AffineMapAttr::get(m);
                       })));
}

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

/// Loop-invariant tables. In an all-parallel generic, a float value of the
/// body that depends only on some of the loop indices (not on an operand's
/// element), e.g. RoPE's cos(t · θ^(−2i/d)) written per element, and whose
/// computation has a transcendental or a division in it, is computed once per
/// point of those loops into a table (a generic of its own, a stage too) and
/// read from it: T·d libm calls per table instead of B·T·H·d.
namespace {
/// The loops a body value depends on; `data` if it depends on an element.
struct IndexDeps {
  bool data = false;
  llvm::SmallBitVector loops;
  bool costly = false;
};
} // namespace

static bool isCostly(Operation *op) {
  return op->getDialect()->getNamespace() == "math" ||
         isa<arith::DivFOp, arith::RemFOp>(op);
}

/// Clones the computation of `v` (its index-only chain) into `b`, with
/// `linalg.index d` read as `linalg.index position[d]`.
static Value cloneChain(OpBuilder &b, Value v, ArrayRef<int64_t> position,
                        IRMapping &mapping) {
  if (Value m = mapping.lookupOrNull(v))
    return m;
  Operation *def = v.getDefiningOp();
  if (auto index = dyn_cast<linalg::IndexOp>(def)) {
    Value r = linalg::IndexOp::create(b, index.getLoc(),
                                      position[index.getDim()]);
    mapping.map(v, r);
    return r;
  }
  for (Value operand : def->getOperands())
    cloneChain(b, operand, position, mapping);
  return b.clone(*def, mapping)->getResult(cast<OpResult>(v).getResultNumber());
}

static void hoistTables(linalg::GenericOp op) {
  if (!op.hasPureBufferSemantics() || op.getNumParallelLoops() != op.getNumLoops())
    return;
  unsigned loops = op.getNumLoops();
  Block &body = op.getRegion().front();
  llvm::DenseMap<Value, IndexDeps> deps;
  auto depsOf = [&](Value v) -> IndexDeps {
    if (auto it = deps.find(v); it != deps.end())
      return it->second;
    IndexDeps d;
    d.loops.resize(loops);
    Operation *def = v.getDefiningOp();
    // Block arguments (elements) and values from above that are not
    // constants are data.
    d.data = !def || (!op.getRegion().isAncestor(def->getParentRegion()) &&
                      !def->hasTrait<OpTrait::ConstantLike>());
    return d;
  };
  for (Operation &inner : body.without_terminator()) {
    IndexDeps d;
    d.loops.resize(loops);
    if (auto index = dyn_cast<linalg::IndexOp>(inner)) {
      d.loops.set(index.getDim());
    } else {
      d.data = inner.getNumRegions() || !isMemoryEffectFree(&inner);
      d.costly = isCostly(&inner);
      for (Value operand : inner.getOperands()) {
        IndexDeps o = depsOf(operand);
        d.data |= o.data;
        d.loops |= o.loops;
        d.costly |= o.costly;
      }
    }
    for (Value r : inner.getResults())
      deps[r] = d;
  }
  // Frontier: costly index-only float values (on fewer loops than the op)
  // used by an element's computation or yielded (an index-only chain on
  // several loop sets is one table, at its last value).
  SmallVector<Value> tables;
  for (Operation &inner : body.without_terminator())
    for (Value r : inner.getResults()) {
      IndexDeps d = depsOf(r);
      if (d.data || !d.costly || d.loops.count() == loops ||
          !isa<FloatType>(r.getType()))
        continue;
      bool frontier = llvm::any_of(r.getUsers(), [&](Operation *user) {
        if (user->hasTrait<OpTrait::IsTerminator>())
          return true;
        if (user->getNumResults() == 0)
          return true;
        return depsOf(user->getResult(0)).data;
      });
      if (frontier)
        tables.push_back(r);
    }
  if (tables.empty())
    return;

  MLIRContext *ctx = op.getContext();
  Location loc = op.getLoc();
  OpBuilder b(op);
  SmallVector<Range> ranges =
      cast<linalg::LinalgOp>(op.getOperation()).createLoopRanges(b, loc);
  SmallVector<Value> inputs(op.getDpsInputs());
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  SmallVector<AffineMap> newMaps(maps.begin(), maps.begin() + inputs.size());
  SmallVector<Value> allocs;
  for (Value v : tables) {
    IndexDeps d = depsOf(v);
    SmallVector<int64_t> position(loops, 0), shape;
    SmallVector<Value> dynSizes;
    SmallVector<AffineExpr> exprs;
    for (unsigned l = 0, k = 0; l < loops; ++l) {
      if (!d.loops.test(l))
        continue;
      position[l] = k++;
      exprs.push_back(getAffineDimExpr(l, ctx));
      std::optional<int64_t> size = getConstantIntValue(ranges[l].size);
      shape.push_back(size ? *size : ShapedType::kDynamic);
      if (!size)
        dynSizes.push_back(cast<Value>(ranges[l].size));
    }
    auto type = MemRefType::get(shape, v.getType());
    Value table = memref::AllocOp::create(b, loc, type, dynSizes,
                                          b.getI64IntegerAttr(64));
    allocs.push_back(table);
    unsigned rank = shape.size();
    SmallVector<utils::IteratorType> parallel(rank,
                                              utils::IteratorType::parallel);
    linalg::GenericOp::create(
        b, loc, ValueRange{}, ValueRange{table},
        ArrayRef<AffineMap>{b.getMultiDimIdentityMap(rank)}, parallel,
        [&](OpBuilder &tb, Location l, ValueRange) {
          IRMapping mapping;
          Value r = cloneChain(tb, v, position, mapping);
          linalg::YieldOp::create(tb, l, r);
        });
    inputs.push_back(table);
    newMaps.push_back(AffineMap::get(loops, 0, exprs, ctx));
  }
  newMaps.append(maps.begin() + op.getNumDpsInputs(), maps.end());
  auto hoisted = linalg::GenericOp::create(
      b, loc, TypeRange{}, inputs, op.getDpsInits(), newMaps,
      op.getIteratorTypesArray());
  hoisted.getRegion().takeBody(op.getRegion());
  Block &moved = hoisted.getRegion().front();
  for (auto [k, v] : llvm::enumerate(tables)) {
    BlockArgument arg = moved.insertArgument(
        op.getNumDpsInputs() + k, v.getType(), loc);
    v.replaceAllUsesWith(arg);
  }
  // The chains now unused.
  for (Operation *inner = moved.getTerminator()->getPrevNode(); inner;) {
    Operation *prev = inner->getPrevNode();
    if (inner->use_empty() && isMemoryEffectFree(inner))
      inner->erase();
    inner = prev;
  }
  b.setInsertionPointAfter(hoisted);
  for (Value table : allocs)
    memref::DeallocOp::create(b, loc, table);
  op.erase();
}

/// Workgroups an element-wise stage's split loop is cut into, at most.
constexpr int64_t kStageChunks = 64;

/// How a stage's leading parallel loops (at most two, `split` of them) are
/// cut: the last one into `pieces` chunks of `chunk` iterations, the one
/// before it (if split = 2) one iteration per workgroup; `count` workgroups.
struct StageGrid {
  Value chunk, pieces, count;
};
static StageGrid stageGrid(OpBuilder &b, Location loc, ArrayRef<Range> ranges,
                           unsigned split) {
  auto idx = [&](int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); };
  auto ceilDiv = [&](Value x, Value d) -> Value {
    Value plus = arith::AddIOp::create(
        b, loc, x, arith::SubIOp::create(b, loc, d, idx(1)));
    return arith::DivUIOp::create(b, loc, plus, d);
  };
  Value ext = getValueOrCreateConstantIndexOp(b, loc, ranges[split - 1].size);
  Value one = idx(1);
  Value wanted = arith::MaxSIOp::create(
      b, loc, one, arith::MinSIOp::create(b, loc, ext, idx(kStageChunks)));
  Value chunk = arith::MaxSIOp::create(b, loc, one, ceilDiv(ext, wanted));
  Value pieces = ceilDiv(ext, chunk);
  Value count = pieces;
  if (split == 2)
    count = arith::MulIOp::create(
        b, loc, getValueOrCreateConstantIndexOp(b, loc, ranges[0].size),
        pieces);
  return {chunk, pieces, count};
}

/// Runs the all-parallel generic `op` (a workgroup's chunk) as loops whose
/// innermost one steps by `vec`: each full step one generic of shape
/// (1, .., 1, vec) vectorised (linalg's vectoriser, static shapes, no
/// masks), the remainder one scalar generic. A body the vectoriser does not
/// take (e.g. a load of another element) stays scalar at the same place.
/// Returns false, leaving `op` alone, unless every indexing map is a
/// projected permutation (tiling a map such as RoPE's partner channel
/// c + 1 - 2 (c mod 2) by 16 columns would cut the wrong slice).
static bool vectoriseStage(OpBuilder &b, linalg::GenericOp op, int64_t vec) {
  Location loc = op.getLoc();
  unsigned rank = op.getNumLoops();
  if (rank == 0 || op.getNumParallelLoops() != rank ||
      !llvm::all_of(op.getIndexingMapsArray(), [](AffineMap m) {
        return m.isProjectedPermutation();
      }))
    return false;
  SmallVector<Range> ranges =
      cast<linalg::LinalgOp>(op.getOperation()).createLoopRanges(b, loc);
  auto idx = [&](OpBuilder &ib, int64_t v) -> Value {
    return arith::ConstantIndexOp::create(ib, loc, v);
  };
  IRRewriter rewriter(b);
  auto tileAt = [&](OpBuilder &ib, ArrayRef<Value> ivs, Value first,
                    OpFoldResult size) -> Operation * {
    SmallVector<OpFoldResult> offsets(ivs.begin(), ivs.end()), sizes(
        ivs.size(), ib.getIndexAttr(1));
    offsets.push_back(first);
    sizes.push_back(size);
    FailureOr<TilingResult> tiled =
        cast<TilingInterface>(op.getOperation())
            .getTiledImplementation(ib, offsets, sizes);
    return succeeded(tiled) ? tiled->tiledOps.front() : nullptr;
  };
  // Outer loops, one iteration at a time.
  SmallVector<Value> ivs;
  OpBuilder ib = b;
  for (unsigned d = 0; d + 1 < rank; ++d) {
    auto loop = scf::ForOp::create(
        ib, loc, idx(ib, 0),
        getValueOrCreateConstantIndexOp(ib, loc, ranges[d].size), idx(ib, 1));
    ivs.push_back(loop.getInductionVar());
    ib.setInsertionPoint(loop.getBody()->getTerminator());
  }
  Value n = getValueOrCreateConstantIndexOp(ib, loc, ranges[rank - 1].size);
  Value full = arith::SubIOp::create(
      ib, loc, n, arith::RemUIOp::create(ib, loc, n, idx(ib, vec)));
  auto inner = scf::ForOp::create(ib, loc, idx(ib, 0), full, idx(ib, vec));
  {
    OpBuilder vb = OpBuilder::atBlockBegin(inner.getBody());
    Operation *piece =
        tileAt(vb, ivs, inner.getInductionVar(), vb.getIndexAttr(vec));
    // Element-wise bodies only: upstream's vectoriser makes invalid IR
    // for linalg.index of the unit dimensions of a tiled generic.
    bool elementwise = piece && llvm::all_of(
        cast<linalg::GenericOp>(piece).getRegion().front(),
        [](Operation &inner) {
          return isa<linalg::YieldOp>(inner) ||
                 (inner.hasTrait<OpTrait::Elementwise>() &&
                  isMemoryEffectFree(&inner)) ||
                 inner.hasTrait<OpTrait::ConstantLike>();
        });
    if (elementwise) {
      SmallVector<int64_t> sizes(rank, 1);
      sizes.back() = vec;
      rewriter.setInsertionPoint(piece);
      SmallVector<bool> scalable(rank, false);
      if (succeeded(linalg::vectorize(rewriter, piece, sizes, scalable)))
        rewriter.eraseOp(piece);
    }
  }
  Operation *rest = tileAt(ib, ivs, full,
                           arith::SubIOp::create(ib, loc, n, full).getResult());
  (void)rest;
  // The vectoriser pads its reads with ub.poison; they are in bounds, and
  // the CPU pipeline has no UB lowering: a zero pad instead.
  SmallVector<ub::PoisonOp> poisons;
  inner.walk([&](ub::PoisonOp p) { poisons.push_back(p); });
  for (ub::PoisonOp p : poisons) {
    OpBuilder pb(p);
    Value zero = arith::ConstantOp::create(
        pb, p.getLoc(), cast<TypedAttr>(pb.getZeroAttr(p.getType())));
    p.replaceAllUsesWith(zero);
    p.erase();
  }
  return true;
}

/// An element-wise (or row-wise) stage of a layer: a generic on buffers
/// whose leading loops are parallel and whose every iteration of them owns
/// its outputs. It runs on the pool as `<layer>_ew<N>_wg(buffers..., i)`,
/// workgroup i one chunk of the leading loops, through the same glue as the
/// matmul stages. Scalars it captures must be constants (cloned); buffers it
/// reads in its body (e.g. RoPE's partner channel) must not be one it
/// writes. Returns false, leaving the op alone, otherwise.
static bool outlineStage(linalg::GenericOp op, StringRef layerName,
                         unsigned index, int64_t vec) {
  if (!op.hasPureBufferSemantics())
    return false;
  // Split at most two leading parallel loops, and leave at least one loop
  // whole: (B, T, ..) ops take a batch row and a chunk of T per workgroup,
  // a (T, d) table a chunk of T (not one element per workgroup).
  unsigned rank = op.getNumLoops();
  unsigned maxSplit = std::max(1u, std::min(2u, rank - 1));
  unsigned split = 0;
  for (utils::IteratorType it : op.getIteratorTypesArray()) {
    if (split == maxSplit || it != utils::IteratorType::parallel)
      break;
    ++split;
  }
  if (split == 0)
    return false;
  // The split loops index every operand directly (a map such as t + 1 or
  // t mod 2 would make the chunk read or write outside its slice).
  for (AffineMap map : op.getIndexingMapsArray())
    for (AffineExpr e : map.getResults())
      if (!isa<AffineDimExpr>(e))
        for (unsigned d = 0; d < split; ++d)
          if (e.isFunctionOfDim(d))
            return false;
  SmallVector<Value> outputs;
  for (OpOperand &init : op.getDpsInitsMutable()) {
    AffineMap map = op.getMatchingIndexingMap(&init);
    for (unsigned d = 0; d < split; ++d)
      if (!llvm::is_contained(map.getResults(),
                              getAffineDimExpr(d, op.getContext())))
        return false;
    outputs.push_back(rootBuffer(init.get()));
  }
  bool writes = false;
  op.getRegion().walk([&](Operation *inner) {
    if (!isMemoryEffectFree(inner) && !isa<memref::LoadOp>(inner))
      writes = true;
  });
  if (writes)
    return false;
  llvm::SetVector<Value> captured;
  getUsedValuesDefinedAbove(op.getRegion(), captured);
  SmallVector<Value> buffers;
  SmallVector<Operation *> constants;
  // Operands and captured values: buffers are passed (the glue passes
  // memref descriptors only); scalars must be constants, cloned (e.g. a
  // generalised linalg.fill's value).
  for (Value v : op->getOperands())
    if (isa<MemRefType>(v.getType())) {
      if (!llvm::is_contained(buffers, v))
        buffers.push_back(v);
    } else {
      captured.insert(v);
    }
  for (Value v : captured) {
    if (isa<MemRefType>(v.getType())) {
      if (llvm::is_contained(outputs, rootBuffer(v)))
        return false;
      if (!llvm::is_contained(buffers, v))
        buffers.push_back(v);
      continue;
    }
    Operation *def = v.getDefiningOp();
    if (!def || !def->hasTrait<OpTrait::ConstantLike>())
      return false;
    constants.push_back(def);
  }

  MLIRContext *ctx = op.getContext();
  Location loc = op.getLoc();
  auto layer = op->getParentOfType<func::FuncOp>();
  std::string base = (layerName + "_ew" + Twine(index)).str();
  SmallVector<Type> types = llvm::map_to_vector(
      buffers, [](Value v) { return v.getType(); });
  OpBuilder mb(ctx);
  mb.setInsertionPointAfter(layer);
  auto [wg, run] = declareStage(mb, loc, base, types, "ew");
  Block *entry = &wg.getBody().front();
  OpBuilder b = OpBuilder::atBlockBegin(entry);
  b.setInsertionPoint(func::ReturnOp::create(b, loc));
  IRMapping mapping;
  for (auto [v, arg] : llvm::zip(buffers, entry->getArguments()))
    mapping.map(v, arg);
  for (Operation *c : constants)
    if (!mapping.contains(c->getResult(0)))
      b.clone(*c, mapping);
  auto clone = cast<linalg::GenericOp>(b.clone(*op, mapping));
  SmallVector<Range> ranges =
      cast<linalg::LinalgOp>(clone.getOperation()).createLoopRanges(b, loc);
  StageGrid grid = stageGrid(b, loc, ranges, split);
  Value i = entry->getArguments().back();
  Value piece = i, row;
  if (split == 2) {
    piece = arith::RemUIOp::create(b, loc, i, grid.pieces);
    row = arith::DivUIOp::create(b, loc, i, grid.pieces);
  }
  Value first = arith::MulIOp::create(b, loc, piece, grid.chunk);
  Value ext = getValueOrCreateConstantIndexOp(b, loc, ranges[split - 1].size);
  Value size = arith::MinSIOp::create(
      b, loc, grid.chunk, arith::SubIOp::create(b, loc, ext, first));
  SmallVector<OpFoldResult> offsets, sizes;
  for (auto [d, r] : llvm::enumerate(ranges)) {
    if (split == 2 && d == 0) {
      offsets.push_back(row);
      sizes.push_back(b.getIndexAttr(1));
    } else if (d == split - 1) {
      offsets.push_back(first);
      sizes.push_back(size);
    } else {
      offsets.push_back(b.getIndexAttr(0));
      sizes.push_back(r.size);
    }
  }
  FailureOr<TilingResult> tiled =
      cast<TilingInterface>(clone.getOperation())
          .getTiledImplementation(b, offsets, sizes);
  if (failed(tiled)) {
    wg.erase();
    run.erase();
    return false;
  }
  clone.erase();
  if (auto chunk = dyn_cast<linalg::GenericOp>(tiled->tiledOps.front())) {
    if (vectoriseStage(b, chunk, vec))
      chunk.erase();
    // The vectoriser's (1, .., 1, vec) transfers as 1-D loads, stores and
    // broadcasts, which the LLVM lowering takes.
    RewritePatternSet patterns(ctx);
    vector::populateVectorTransferDropUnitDimsPatterns(patterns);
    vector::populateDropUnitDimWithShapeCastPatterns(patterns);
    vector::populateVectorTransferPermutationMapLoweringPatterns(patterns);
    vector::populateVectorTransferLoweringPatterns(patterns,
                                                   /*maxTransferRank=*/1);
    vector::populateVectorBroadcastLoweringPatterns(patterns);
    vector::populateVectorShapeCastLoweringPatterns(patterns);
    vector::ShapeCastOp::getCanonicalizationPatterns(patterns, ctx);
    vector::BroadcastOp::getCanonicalizationPatterns(patterns, ctx);
    // Not converging would leave valid, only less simplified, IR.
    (void)applyPatternsGreedily(wg, std::move(patterns));
  }

  OpBuilder lb(op);
  SmallVector<Range> layerRanges =
      cast<linalg::LinalgOp>(op.getOperation()).createLoopRanges(lb, loc);
  StageGrid layerGrid = stageGrid(lb, loc, layerRanges, split);
  SmallVector<Value> callArgs(buffers);
  callArgs.push_back(layerGrid.count);
  func::CallOp::create(lb, loc, run, callArgs);
  op.erase();
  return true;
}

struct FEMLayerMatmulPass
    : public fem::impl::FEMLayerMatmulBase<FEMLayerMatmulPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (!target.empty() && !isTileTarget(target)) {
      module.emitError() << "fem-layer-matmul: unknown target '" << target
                         << "', expected host, avx2, avx512 or generic";
      return signalPassFailure();
    }
    bool amxTarget = fem::layer::targetHasAmxBf16(module);
    std::optional<MatmulPrecision> chosen =
        precision == "auto" ? std::optional(defaultMatmulPrecision(amxTarget))
                            : fem::layer::parseMatmulPrecision(precision);
    if (!chosen) {
      module.emitError() << "fem-layer-matmul: unknown matmul precision '"
                         << precision
                         << "', expected auto, f32, bf16x3 or bf16x6";
      return signalPassFailure();
    }
    if (*chosen != MatmulPrecision::F32 && !amxTarget) {
      module.emitError()
          << "fem-layer-matmul: matmul precision '" << precision
          << "' needs AMX-BF16 tiles (amx-tile, amx-bf16), which the "
             "module's target features do not enable; use f32";
      return signalPassFailure();
    }
    mode = *chosen;
    int64_t vec = vectorLanes(module, target);
    SmallVector<func::FuncOp> layers;
    for (auto f : module.getOps<func::FuncOp>())
      if (!f.isExternal() && f->hasAttr("fem.layer"))
        layers.push_back(f);
    for (func::FuncOp f : layers) {
      auto name = f->getAttrOfType<StringAttr>("fem.layer");
      if (!name)
        continue;
      SmallVector<Contraction> found;
      f.walk([&](linalg::GenericOp op) { delinearise(op); });
      f.walk([&](linalg::GenericOp op) {
        if (auto c = matchContraction(op))
          found.push_back(*c);
      });
      if (!found.empty()) {
        StageBuilder stages(module, f, name.getValue(), vec,
                            femc::layer::amxBlocking(mode));
        if (mode == MatmulPrecision::F32) {
          for (SmallVector<Contraction *> &group : sharedA(found))
            rewriteF32(group, stages, vec);
        } else {
          for (Contraction &c : found)
            rewriteAmx(c, stages);
        }
      }
      // What is left (element-wise and row-wise generics): stages too,
      // their index-only transcendentals first as tables.
      SmallVector<linalg::FillOp> fills;
      f.walk([&](linalg::FillOp op) { fills.push_back(op); });
      IRRewriter rewriter(module.getContext());
      for (linalg::FillOp fill : fills) {
        rewriter.setInsertionPoint(fill);
        (void)linalg::generalizeNamedOp(rewriter, fill);
      }
      SmallVector<linalg::GenericOp> elementwise;
      f.walk([&](linalg::GenericOp op) { elementwise.push_back(op); });
      for (linalg::GenericOp op : elementwise)
        hoistTables(op);
      SmallVector<linalg::GenericOp> rest;
      f.walk([&](linalg::GenericOp op) { rest.push_back(op); });
      unsigned index = 0;
      for (linalg::GenericOp op : rest)
        if (outlineStage(op, name.getValue(), index, vec))
          ++index;
    }
  }

  /// Split-bf16 on AMX: both operands packed into pieces, then the tiles
  /// of C.
  void rewriteAmx(Contraction &c, StageBuilder &stages) {
    OpBuilder b(c.op);
    Location loc = c.op.getLoc();
    Value A = asMatrix(b, loc, c.a, c.groupsA);
    Value B = asMatrix(b, loc, c.b, c.groupsB);
    Value C = asMatrix(b, loc, c.c, c.groupsC);
    Value M = memref::DimOp::create(b, loc, A, 0);
    Value K = memref::DimOp::create(b, loc, A, 1);
    Value N = memref::DimOp::create(b, loc, C, 1);
    fem::layer::AmxGrid g =
        fem::layer::amxGrid(b, loc, M, N, K, femc::layer::amxBlocking(mode));
    auto alloc = [&](Value rows) -> Value {
      return memref::AllocOp::create(b, loc,
                                     fem::layer::amxPackedType(b.getContext()),
                                     ValueRange{rows}, b.getI64IntegerAttr(64));
    };
    Value ap = alloc(g.rowsA), bp = alloc(g.rowsB);
    func::CallOp::create(b, loc, stages.run("mmx_pack_a"),
                         ValueRange{A, ap, g.packA});
    func::CallOp::create(
        b, loc, stages.run(c.transposedB ? "mmx_pack_nt" : "mmx_pack_nn"),
        ValueRange{B, bp, g.packB});
    func::CallOp::create(b, loc, stages.run("mmx"),
                         ValueRange{ap, bp, C, g.matmul});
    memref::DeallocOp::create(b, loc, ap);
    memref::DeallocOp::create(b, loc, bp);
    c.op.erase();
  }

  /// Contractions that read the same A in program order, as groups that
  /// share one packed A: those of one block reading the same A value
  /// (collapsed alike) with nothing from the first to the last that may
  /// write A's buffer (a write into a buffer that is not a fresh
  /// allocation may be A, when A is not one either).
  static SmallVector<SmallVector<Contraction *>>
  sharedA(MutableArrayRef<Contraction> found) {
    auto fresh = [](Value root) {
      return root.getDefiningOp<memref::AllocOp>() != nullptr;
    };
    auto mayWrite = [&](Operation *op, Value a) {
      return op
          ->walk([&](Operation *inner) {
            auto effects = dyn_cast<MemoryEffectOpInterface>(inner);
            for (Value v : inner->getOperands()) {
              if (!isa<MemRefType>(v.getType()))
                continue;
              Value root = rootBuffer(v);
              if (root != a && (fresh(root) || fresh(a)))
                continue;
              if (!effects)
                return WalkResult::interrupt();
              SmallVector<MemoryEffects::EffectInstance> on;
              effects.getEffectsOnValue(v, on);
              for (auto &e : on)
                if (!isa<MemoryEffects::Read>(e.getEffect()))
                  return WalkResult::interrupt();
            }
            return WalkResult::advance();
          })
          .wasInterrupted();
    };
    SmallVector<SmallVector<Contraction *>> groups;
    for (Contraction &c : found) {
      SmallVector<Contraction *> *open = nullptr;
      for (auto &g : groups)
        if (g.front()->a == c.a && g.front()->groupsA == c.groupsA &&
            g.back()->op->getBlock() == c.op->getBlock() &&
            g.back()->op->isBeforeInBlock(c.op))
          open = &g;
      if (open) {
        Value a = rootBuffer(c.a);
        bool clash = false;
        for (Operation *op = open->back()->op; !clash && op != c.op;
             op = op->getNextNode())
          clash = mayWrite(op, a);
        if (!clash) {
          open->push_back(&c);
          continue;
        }
      }
      groups.push_back({&c});
    }
    return groups;
  }

  /// The f32 stages of a group of sharedA: A packed once where the first
  /// is, then per contraction its B packed and the matmul where it is.
  void rewriteF32(ArrayRef<Contraction *> group, StageBuilder &stages,
                  int64_t vec) {
    MatmulBlocking blk = matmulBlockingFor(vec);
    int64_t nr = blk.panel();
    Contraction &first = *group.front();
    OpBuilder b(first.op);
    Location loc = first.op.getLoc();
    auto ceilDiv = [&](Value x, int64_t d) -> Value {
      Value plus = arith::AddIOp::create(
          b, loc, x, arith::ConstantIndexOp::create(b, loc, d - 1));
      return arith::DivUIOp::create(
          b, loc, plus, arith::ConstantIndexOp::create(b, loc, d));
    };
    auto packed = [&](Value outer, Value K, int64_t inner) -> Value {
      auto type = MemRefType::get(
          {ShapedType::kDynamic, ShapedType::kDynamic, inner}, b.getF32Type());
      return memref::AllocOp::create(b, loc, type, ValueRange{outer, K},
                                     b.getI64IntegerAttr(64));
    };
    Value A = asMatrix(b, loc, first.a, first.groupsA);
    Value M = memref::DimOp::create(b, loc, A, 0);
    Value K = memref::DimOp::create(b, loc, A, 1);
    Value blocks = ceilDiv(M, blk.rows);
    Value ap = packed(blocks, K, blk.rows);
    func::CallOp::create(b, loc, stages.run("mm_pack_a"),
                         ValueRange{A, ap, blocks});
    for (Contraction *c : group) {
      b.setInsertionPoint(c->op);
      loc = c->op.getLoc();
      Value B = asMatrix(b, loc, c->b, c->groupsB);
      Value C = asMatrix(b, loc, c->c, c->groupsC);
      Value N = memref::DimOp::create(b, loc, C, 1);
      Value panels = ceilDiv(N, nr);
      Value p = packed(panels, K, nr);
      func::CallOp::create(
          b, loc, stages.run(c->transposedB ? "mm_pack_nt" : "mm_pack_nn"),
          ValueRange{B, p, panels});
      func::CallOp::create(
          b, loc, stages.run("mm"),
          ValueRange{ap, p, C, tileGrid(b, loc, M, N, panels, blk).count});
      memref::DeallocOp::create(b, loc, p);
      if (c == group.back())
        memref::DeallocOp::create(b, loc, ap);
      c->op.erase();
    }
  }

  MatmulPrecision mode = MatmulPrecision::F32;
};
} // namespace
