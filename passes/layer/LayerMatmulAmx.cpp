//===- LayerMatmulAmx.cpp - split-bf16 matmul stages on AMX tiles ---------===//
//
// fem-layer-matmul's stages for precision bf16x3 and bf16x6 (see
// LayerMatmulBlocking.h, MatmulPrecision and AmxBlocking, for the layout):
//
//   pack_a   row tile rt of A (16 rows, zeros past M and K): each element
//            split into bf16 pieces, piece p of rows x 32 k per A tile;
//   pack_nn / pack_nt   column tile ct of B likewise, in the VNNI layout of
//            an AMX B operand (row k/2, element 2n + k%2); B as (N, K)
//            (nn.Linear's W) is transposed on the way, 16 x 16 pairs at a
//            time in vector shuffles;
//   mmx      workgroup i's tile of C, one block of 1 x 2 C tiles (16 rows,
//            32 columns) at a time: C tiles `hi` start from C (a bias or
//            zero fill before the contraction is kept) and take a0·b0,
//            tiles `lo` start at -0 and take the cross products
//            (a0·b1 + a1·b0 [+ a0·b2 + a1·b1 + a2·b0]); at the end
//            C = hi + lo, masked past M and N. Eight tile registers: four
//            accumulators, the A pieces, one or two B tiles.
//
// The split rounds to nearest: x0 = bf16(x), x1 = bf16(x - x0) (x - x0 is
// exact), x2 = x - x0 - x1 (8 significant bits at most, exact in bf16):
// x = x0 + x1 + x2 exactly for a normal x, x0 + x1 within 2^-16 |x|. Each bf16 product is exact in f32
// and tdpbf16ps adds it to an f32 accumulator, so `hi` carries the rounding
// of an f32 dot product of K terms and `lo` (about 2^-8 of it) adds
// little; bf16x6 drops only products below 2^-24 |a||b|, bf16x3 those
// below 2^-16. Non-finite inputs: x0 keeps an infinity and makes a NaN a
// quiet NaN, the later pieces are 0 (the residual inf - inf is replaced by
// 0); where `hi` is not finite C = hi, so an infinity or NaN among the
// products gives what the f32 stage gives (an infinity times a zero piece
// of the other operand in `lo` cannot turn an infinite result into NaN).
// AMX treats bf16 denormals as zero and flushes f32 denormal results: a
// product below 2^-126 (e.g. |a|, |b| < 2^-63) is lost where the f32 stage
// keeps it.
//
// AMX tiles never live across a loop (LLVM configures the tile registers
// per function): the accumulators live in f32 buffers on the stack, one
// 2 x 16 x 16 pair (hi, lo) per row tile of a block of up to kBlockRows,
// and are loaded and stored around each unrolled step of kU K tiles. The
// K loop runs outside the block's row tiles, so a column pair's B tiles of
// one step (6 KiB at bf16x6) stay in L1 while every row tile of the block
// takes them; with the K loop inside (all of K per row tile) they streamed
// from L2 for each row tile.
//
//===----------------------------------------------------------------------===//
#include "passes/layer/LayerMatmulAmx.h"
#include "passes/cpu/ReadSoftmaxAmx.h"

#include "mlir/Dialect/AMX/AMXDialect.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <limits>

using namespace mlir;
using namespace mlir::fem;
using namespace mlir::fem::layer;

std::optional<MatmulPrecision>
mlir::fem::layer::parseMatmulPrecision(StringRef name) {
  if (name == "f32")
    return MatmulPrecision::F32;
  if (name == "bf16x3")
    return MatmulPrecision::Bf16x3;
  if (name == "bf16x6")
    return MatmulPrecision::Bf16x6;
  return std::nullopt;
}

StringRef mlir::fem::layer::matmulPrecisionName(MatmulPrecision p) {
  switch (p) {
  case MatmulPrecision::F32:
    return "f32";
  case MatmulPrecision::Bf16x3:
    return "bf16x3";
  case MatmulPrecision::Bf16x6:
    return "bf16x6";
  }
  return "f32";
}

bool mlir::fem::layer::targetHasAmxBf16(ModuleOp module) {
  // targetHasFeature reads the module around an op: ask of the first op.
  Operation *inside = &module.getBody()->front();
  return !module.getBody()->empty() &&
         cpu::targetHasFeature(inside, "amx-tile") &&
         cpu::targetHasFeature(inside, "amx-bf16");
}

MemRefType mlir::fem::layer::amxPackedType(MLIRContext *ctx) {
  return MemRefType::get({ShapedType::kDynamic, AmxBlocking::kTileK},
                         BFloat16Type::get(ctx));
}

namespace {

constexpr int64_t kT = AmxBlocking::kTile;
/// K tiles per step of the matmul's K loop (the accumulators are loaded
/// and stored once per step). A C microbenchmark of the stage's steps on an
/// Intel host with AMX (1024^3, bf16x6, one thread): 4 tiles 10.3 ns per
/// tdpbf16ps, 2 tiles 10.7, 8 tiles 13.0, against 11.5 with the K loop
/// inside the row tiles (docs/benchmarks.md, "AMX host, same-run bench").
constexpr int64_t kU = 4;
/// Row tiles whose accumulators a block keeps (2 x 2 KiB each on the stack).
constexpr int64_t kBlockRows = 16;
/// Packed A tiles (1 KiB each) a block of row tiles may hold: 1 MiB, half
/// of a Sapphire Rapids core's L2, the rest for the column pair's B tiles.
constexpr int64_t kAResidentTiles = 1024;

/// Index and vector helpers on one ImplicitLocOpBuilder.
struct Emitter {
  ImplicitLocOpBuilder &b;
  MLIRContext *ctx;
  explicit Emitter(ImplicitLocOpBuilder &b) : b(b), ctx(b.getContext()) {}

  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, v); }
  Value add(Value x, Value y) { return arith::AddIOp::create(b, x, y); }
  Value sub(Value x, Value y) { return arith::SubIOp::create(b, x, y); }
  Value mul(Value x, Value y) { return arith::MulIOp::create(b, x, y); }
  Value div(Value x, Value y) { return arith::DivUIOp::create(b, x, y); }
  Value rem(Value x, Value y) { return arith::RemUIOp::create(b, x, y); }
  Value minI(Value x, Value y) { return arith::MinSIOp::create(b, x, y); }
  Value maxI(Value x, Value y) { return arith::MaxSIOp::create(b, x, y); }
  Value ceilDiv(Value x, int64_t d) { return div(add(x, idx(d - 1)), idx(d)); }
  Value ceilDiv(Value x, Value d) { return div(add(x, sub(d, idx(1))), d); }
  Value lt(Value x, Value y) {
    return arith::CmpIOp::create(b, arith::CmpIPredicate::slt, x, y);
  }
  Value select(Value c, Value x, Value y) {
    return arith::SelectOp::create(b, c, x, y);
  }
  Value dim(Value m, int64_t d) { return memref::DimOp::create(b, m, d); }

  VectorType vf() { return VectorType::get({kT}, b.getF32Type()); }
  VectorType vi() { return VectorType::get({kT}, b.getI32Type()); }
  Value splatI(int32_t v) {
    return arith::ConstantOp::create(
        b, DenseElementsAttr::get(vi(), b.getI32IntegerAttr(v).getValue()));
  }
  Value splatF(float v) {
    return arith::ConstantOp::create(b, DenseElementsAttr::get(vf(), v));
  }
  Value mask(Value n) {
    return vector::CreateMaskOp::create(
        b, VectorType::get({kT}, b.getI1Type()), ValueRange{n});
  }
  /// 16 floats of row `row` of `m` from column `col` on, zero where `left`
  /// (the columns there are) runs out.
  Value loadRow(Value m, Value row, Value col, Value left) {
    return vector::MaskedLoadOp::create(b, vf(), m, ValueRange{row, col},
                                        mask(left), splatF(0.0f));
  }

  /// scf.for lb..ub step `step`; body(iv) at the body's end.
  void loop(Value lb, Value ub, Value step,
            llvm::function_ref<void(Value)> body) {
    auto f = scf::ForOp::create(b, lb, ub, step);
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPoint(f.getBody()->getTerminator());
    body(f.getInductionVar());
  }
  void ifThen(Value cond, llvm::function_ref<void()> body) {
    auto i = scf::IfOp::create(b, cond, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPoint(i.thenBlock()->getTerminator());
    body();
  }

  /// The bf16 pieces of v (16 f32) as i32 bit patterns with their low 16
  /// bits clear: x0 (NaN made quiet, infinity kept), x1, [x2], each the
  /// rest rounded to nearest.
  SmallVector<Value> split(Value v, int64_t pieces) {
    Value hiBits = splatI(static_cast<int32_t>(0xFFFF0000u));
    auto bits = [&](Value f) { return arith::BitcastOp::create(b, vi(), f); };
    auto flt = [&](Value i) { return arith::BitcastOp::create(b, vf(), i); };
    auto isNan = [&](Value f) {
      return arith::CmpFOp::create(b, arith::CmpFPredicate::UNO, f, f);
    };
    // x rounded to bf16 (to nearest, ties to even) as its f32 bits; where
    // that overflows (|x| within half a bf16 ulp of FLT_MAX, or x infinite)
    // truncated instead.
    Value expBits = splatI(0x7F800000);
    auto round = [&](Value f) -> Value {
      Value x = bits(f);
      Value lsb = arith::AndIOp::create(
          b, arith::ShRUIOp::create(b, x, splatI(16)), splatI(1));
      Value up = arith::AddIOp::create(
          b, x, arith::AddIOp::create(b, lsb, splatI(0x7FFF)));
      Value rounded = arith::AndIOp::create(b, up, hiBits);
      Value over = arith::CmpIOp::create(
          b, arith::CmpIPredicate::eq,
          arith::AndIOp::create(b, rounded, expBits), expBits);
      return select(over, arith::AndIOp::create(b, x, hiBits), rounded);
    };
    SmallVector<Value> out;
    out.push_back(select(isNan(v), splatI(0x7FC00000), round(v)));
    Value r = v;
    for (int64_t p = 1; p < pieces; ++p) {
      // Exact: the residual of a rounding to 8 significant bits.
      r = arith::SubFOp::create(b, r, flt(out.back()));
      r = select(isNan(r), splatF(0.0f), r);
      out.push_back(round(r));
    }
    return out;
  }

  /// Pairs of bf16 (the top halves of x: elements 0..15, then y: 16..31)
  /// as 16 i32: element 2j in the low half, 2j + 1 in the high half.
  Value pairs(Value x, Value y) {
    SmallVector<int64_t> evens, odds;
    for (int64_t j = 0; j < kT; ++j) {
      evens.push_back(2 * j);
      odds.push_back(2 * j + 1);
    }
    Value e = vector::ShuffleOp::create(b, x, y, evens);
    Value o = vector::ShuffleOp::create(b, x, y, odds);
    return arith::OrIOp::create(
        b, arith::ShRUIOp::create(b, e, splatI(16)), o);
  }

  /// The pieces of 32 consecutive elements (row `row` of m, columns
  /// col..col+31, zero past `extent` or where !valid) as pairs.
  SmallVector<Value> rowPieces(Value m, Value row, Value valid, Value col,
                               Value extent, int64_t pieces) {
    Value left = select(valid, sub(extent, col), idx(0));
    Value x = loadRow(m, row, col, left);
    Value y = loadRow(m, row, add(col, idx(kT)), sub(left, idx(kT)));
    SmallVector<Value> px = split(x, pieces), py = split(y, pieces), out;
    for (int64_t p = 0; p < pieces; ++p)
      out.push_back(pairs(px[p], py[p]));
    return out;
  }

  /// Stores 16 i32 (32 bf16) as row `row` of a packed buffer.
  void storePacked(Value v, Value packed, Value row) {
    Value asBf16 = vector::BitCastOp::create(
        b, VectorType::get({2 * kT}, b.getBF16Type()), v);
    vector::StoreOp::create(b, asBf16, packed, ValueRange{row, idx(0)});
  }

  /// Row of the first packed row of tile (t, p, kt).
  Value tileRow(Value t, int64_t pieces, int64_t p, Value kTiles, Value kt) {
    return mul(add(mul(add(mul(t, idx(pieces)), idx(p)), kTiles), kt),
               idx(kT));
  }
};

} // namespace

void mlir::fem::layer::buildAmxPackA(OpBuilder &ob, Location loc,
                                     ValueRange args, const AmxBlocking &blk) {
  ImplicitLocOpBuilder b(loc, ob);
  Emitter e(b);
  Value A = args[0], Ap = args[1], rt = args[2];
  Value M = e.dim(A, 0), K = e.dim(A, 1);
  Value kTiles = e.ceilDiv(K, AmxBlocking::kTileK);
  Value lastRow = e.maxI(e.sub(M, e.idx(1)), e.idx(0));
  e.loop(e.idx(0), e.idx(kT), e.idx(1), [&](Value rr) {
    Value row = e.add(e.mul(rt, e.idx(kT)), rr);
    Value valid = e.lt(row, M);
    Value rowC = e.minI(row, lastRow);
    e.loop(e.idx(0), kTiles, e.idx(1), [&](Value kt) {
      Value col = e.mul(kt, e.idx(AmxBlocking::kTileK));
      SmallVector<Value> pieces =
          e.rowPieces(A, rowC, valid, col, K, blk.pieces);
      for (int64_t p = 0; p < blk.pieces; ++p)
        e.storePacked(pieces[p], Ap,
                      e.add(e.tileRow(rt, blk.pieces, p, kTiles, kt), rr));
    });
  });
}

void mlir::fem::layer::buildAmxPackB(OpBuilder &ob, Location loc,
                                     ValueRange args, const AmxBlocking &blk,
                                     bool nt) {
  ImplicitLocOpBuilder b(loc, ob);
  Emitter e(b);
  Value B = args[0], Bp = args[1], ct = args[2];
  Value K = e.dim(B, nt ? 1 : 0), N = e.dim(B, nt ? 0 : 1);
  Value kTiles = e.ceilDiv(K, AmxBlocking::kTileK);
  Value n0 = e.mul(ct, e.idx(kT));
  if (nt) {
    // Rows n0..n0+15 of B, each 32 k as 16 pairs, transposed to the VNNI
    // rows (pair k/2, column n).
    Value lastRow = e.maxI(e.sub(N, e.idx(1)), e.idx(0));
    e.loop(e.idx(0), kTiles, e.idx(1), [&](Value kt) {
      Value col = e.mul(kt, e.idx(AmxBlocking::kTileK));
      SmallVector<SmallVector<Value>> byPiece(blk.pieces);
      for (int64_t j = 0; j < kT; ++j) {
        Value n = e.add(n0, e.idx(j));
        SmallVector<Value> pieces = e.rowPieces(
            B, e.minI(n, lastRow), e.lt(n, N), col, K, blk.pieces);
        for (int64_t p = 0; p < blk.pieces; ++p)
          byPiece[p].push_back(pieces[p]);
      }
      for (int64_t p = 0; p < blk.pieces; ++p) {
        SmallVector<Value> rows = transposeSquare(b, byPiece[p]);
        Value first = e.tileRow(ct, blk.pieces, p, kTiles, kt);
        for (int64_t k2 = 0; k2 < kT; ++k2)
          e.storePacked(rows[k2], Bp, e.add(first, e.idx(k2)));
      }
    });
    return;
  }
  // (K, N): VNNI row k/2 interleaves rows k and k + 1 of B's 16 columns.
  Value lastK = e.maxI(e.sub(K, e.idx(1)), e.idx(0));
  Value left = e.sub(N, n0);
  e.loop(e.idx(0), kTiles, e.idx(1), [&](Value kt) {
    e.loop(e.idx(0), e.idx(kT), e.idx(1), [&](Value k2) {
      Value k = e.add(e.mul(kt, e.idx(AmxBlocking::kTileK)),
                      e.mul(k2, e.idx(2)));
      Value k1 = e.add(k, e.idx(1));
      Value x = e.loadRow(B, e.minI(k, lastK), n0,
                          e.select(e.lt(k, K), left, e.idx(0)));
      Value y = e.loadRow(B, e.minI(k1, lastK), n0,
                          e.select(e.lt(k1, K), left, e.idx(0)));
      SmallVector<Value> px = e.split(x, blk.pieces),
                         py = e.split(y, blk.pieces);
      for (int64_t p = 0; p < blk.pieces; ++p) {
        Value pair = arith::OrIOp::create(
            b, arith::ShRUIOp::create(b, px[p], e.splatI(16)), py[p]);
        e.storePacked(pair, Bp,
                      e.add(e.tileRow(ct, blk.pieces, p, kTiles, kt), k2));
      }
    });
  });
}

AmxGrid mlir::fem::layer::amxGrid(OpBuilder &ob, Location loc, Value M,
                                  Value N, Value K, const AmxBlocking &blk) {
  ImplicitLocOpBuilder b(loc, ob);
  Emitter e(b);
  using AB = femc::layer::AmxBlocking;
  Value rowTiles = e.ceilDiv(M, kT);
  Value colPairs = e.ceilDiv(N, 2 * kT);
  Value colTiles = e.mul(colPairs, e.idx(2));
  Value kTiles = e.ceilDiv(K, AmxBlocking::kTileK);
  Value perTile = e.mul(e.idx(blk.pieces * kT), kTiles);
  Value one = e.idx(1);
  Value rowShares = e.maxI(e.ceilDiv(M, AB::kGroupRows), one);
  Value groupRows = e.maxI(e.ceilDiv(rowTiles, rowShares), one);
  Value colShares = e.maxI(e.ceilDiv(N, AB::kGroupCols), one);
  Value groupCols = e.maxI(e.ceilDiv(colPairs, colShares), one);
  Value colGroups = e.ceilDiv(colPairs, groupCols);
  AmxGrid g;
  g.rowsA = e.mul(rowTiles, perTile);
  g.rowsB = e.mul(colTiles, perTile);
  g.packA = rowTiles;
  g.packB = colTiles;
  g.matmul = e.mul(e.ceilDiv(rowTiles, groupRows), colGroups);
  return g;
}

void mlir::fem::layer::buildAmxMatmul(OpBuilder &ob, Location loc,
                                      ValueRange args,
                                      const AmxBlocking &blk) {
  ImplicitLocOpBuilder b(loc, ob);
  Emitter e(b);
  using AB = femc::layer::AmxBlocking;
  Value Ap = args[0], Bp = args[1], C = args[2], i = args[3];
  int64_t P = blk.pieces;
  Value M = e.dim(C, 0), N = e.dim(C, 1);
  Value one = e.idx(1), c0 = e.idx(0);
  Value rowTiles = e.ceilDiv(M, kT);
  Value colPairs = e.ceilDiv(N, 2 * kT);
  // Ap holds rowTiles · P · kTiles tiles of 16 rows.
  Value kTiles = e.div(e.dim(Ap, 0),
                      e.maxI(e.mul(rowTiles, e.idx(P * kT)), one));
  Value rowShares = e.maxI(e.ceilDiv(M, AB::kGroupRows), one);
  Value groupRows = e.maxI(e.ceilDiv(rowTiles, rowShares), one);
  Value colShares = e.maxI(e.ceilDiv(N, AB::kGroupCols), one);
  Value groupCols = e.maxI(e.ceilDiv(colPairs, colShares), one);
  Value colGroups = e.ceilDiv(colPairs, groupCols);
  Value rt0 = e.mul(e.div(i, colGroups), groupRows);
  Value cp0 = e.mul(e.rem(i, colGroups), groupCols);
  Value rtEnd = e.maxI(rt0, e.minI(rowTiles, e.add(rt0, groupRows)));
  Value cpEnd = e.maxI(cp0, e.minI(colPairs, e.add(cp0, groupCols)));

  auto f32 = b.getF32Type();
  auto accType = MemRefType::get({kBlockRows, 2, kT, kT}, f32);
  Value hiBuf = memref::AllocaOp::create(b, accType, b.getI64IntegerAttr(64));
  Value loBuf = memref::AllocaOp::create(b, accType, b.getI64IntegerAttr(64));
  auto aTile = amx::TileType::get({kT, AmxBlocking::kTileK}, b.getBF16Type());
  auto cTile = amx::TileType::get({kT, kT}, f32);
  Value lastRow = e.maxI(e.sub(M, one), c0);
  Value kFull = e.sub(kTiles, e.rem(kTiles, e.idx(kU)));

  // Steps of `u` K tiles from kt0: accumulators in, products, out.
  auto step = [&](Value rt, Value slot, Value cp, Value kt0, int64_t u) {
    Value hi[2], lo[2];
    for (int64_t c = 0; c < 2; ++c) {
      hi[c] = amx::TileLoadOp::create(b, cTile, hiBuf,
                                      ValueRange{slot, e.idx(c), c0, c0});
      lo[c] = amx::TileLoadOp::create(b, cTile, loBuf,
                                      ValueRange{slot, e.idx(c), c0, c0});
    }
    for (int64_t j = 0; j < u; ++j) {
      Value kt = e.add(kt0, e.idx(j));
      SmallVector<Value> a;
      for (int64_t p = 0; p < P; ++p)
        a.push_back(amx::TileLoadOp::create(
            b, aTile, Ap, ValueRange{e.tileRow(rt, P, p, kTiles, kt), c0}));
      for (int64_t c = 0; c < 2; ++c) {
        Value ct = e.add(e.mul(cp, e.idx(2)), e.idx(c));
        auto bTile = [&](int64_t p) -> Value {
          return amx::TileLoadOp::create(
              b, aTile, Bp, ValueRange{e.tileRow(ct, P, p, kTiles, kt), c0});
        };
        auto dot = [&](Value x, Value y, Value acc) -> Value {
          return amx::TileMulFOp::create(b, cTile, x, y, acc);
        };
        // Pieces whose exponents sum to at most 1 (bf16x3) or 2 (bf16x6);
        // a0·b0 into hi, the rest into lo, each B piece loaded once.
        Value b0 = bTile(0);
        hi[c] = dot(a[0], b0, hi[c]);
        lo[c] = dot(a[1], b0, lo[c]);
        if (P == 3)
          lo[c] = dot(a[2], b0, lo[c]);
        Value b1 = bTile(1);
        lo[c] = dot(a[0], b1, lo[c]);
        if (P == 3) {
          lo[c] = dot(a[1], b1, lo[c]);
          lo[c] = dot(a[0], bTile(2), lo[c]);
        }
      }
    }
    for (int64_t c = 0; c < 2; ++c) {
      amx::TileStoreOp::create(b, hiBuf, ValueRange{slot, e.idx(c), c0, c0},
                               hi[c]);
      amx::TileStoreOp::create(b, loBuf, ValueRange{slot, e.idx(c), c0, c0},
                               lo[c]);
    }
  };

  // Row tiles in blocks whose packed A (P · kTiles tiles of 1 KiB each)
  // stays in L2 while every column pair of the workgroup passes over it:
  // the whole group's A (up to 16 row tiles, 1.5 MiB at K = 1024 and
  // bf16x6) does not, and was read again from L3 for every column pair.
  Value blockRows = e.minI(
      e.maxI(e.div(e.idx(kAResidentTiles), e.mul(e.idx(P), kTiles)), one),
      e.idx(kBlockRows));
  e.loop(rt0, rtEnd, blockRows, [&](Value rb) {
    Value rbEnd = e.minI(rtEnd, e.add(rb, blockRows));
    e.loop(cp0, cpEnd, one, [&](Value cp) {
      Value n0 = e.mul(cp, e.idx(2 * kT));
      Value left[2] = {e.sub(N, n0), e.sub(N, e.add(n0, e.idx(kT)))};
      Value col[2] = {n0, e.add(n0, e.idx(kT))};
      // hi = C (zeros past M and N), lo = 0, for each row tile.
      e.loop(rb, rbEnd, one, [&](Value rt) {
        Value slot = e.sub(rt, rb);
        Value r0 = e.mul(rt, e.idx(kT));
        e.loop(c0, e.idx(kT), one, [&](Value rr) {
          Value row = e.add(r0, rr);
          Value valid = e.lt(row, M);
          Value rowC = e.minI(row, lastRow);
          for (int64_t c = 0; c < 2; ++c) {
            Value x = e.loadRow(C, rowC, col[c], e.select(valid, left[c], c0));
            vector::StoreOp::create(b, x, hiBuf,
                                    ValueRange{slot, e.idx(c), rr, c0});
            // -0: hi + lo is hi exactly where no cross product is nonzero.
            vector::StoreOp::create(b, e.splatF(-0.0f), loBuf,
                                    ValueRange{slot, e.idx(c), rr, c0});
          }
        });
      });
      // Every row tile of the block takes a step's K tiles before the next
      // step: each accumulator still sums its products in K order.
      e.loop(c0, kFull, e.idx(kU), [&](Value kt0) {
        e.loop(rb, rbEnd, one,
               [&](Value rt) { step(rt, e.sub(rt, rb), cp, kt0, kU); });
      });
      e.loop(kFull, kTiles, one, [&](Value kt) {
        e.loop(rb, rbEnd, one,
               [&](Value rt) { step(rt, e.sub(rt, rb), cp, kt, 1); });
      });
      // C = hi + lo where hi is finite, else hi.
      e.loop(rb, rbEnd, one, [&](Value rt) {
        Value slot = e.sub(rt, rb);
        Value r0 = e.mul(rt, e.idx(kT));
        Value rows = e.minI(e.idx(kT), e.sub(M, r0));
        e.loop(c0, rows, one, [&](Value rr) {
          Value row = e.add(r0, rr);
          for (int64_t c = 0; c < 2; ++c) {
            Value h = vector::LoadOp::create(
                b, e.vf(), hiBuf, ValueRange{slot, e.idx(c), rr, c0});
            Value l = vector::LoadOp::create(
                b, e.vf(), loBuf, ValueRange{slot, e.idx(c), rr, c0});
            Value finite = arith::CmpFOp::create(
                b, arith::CmpFPredicate::OLT, math::AbsFOp::create(b, h),
                e.splatF(std::numeric_limits<float>::infinity()));
            Value out = e.select(finite, arith::AddFOp::create(b, h, l), h);
            vector::MaskedStoreOp::create(b, C, ValueRange{row, col[c]},
                                          e.mask(left[c]), out);
          }
        });
      });
    });
  });
}

SmallVector<Value> mlir::fem::layer::transposeSquare(ImplicitLocOpBuilder &b,
                                                     SmallVector<Value> rows) {
  int64_t n = rows.size();
  for (int64_t s = 1; s < n; s *= 2) {
    SmallVector<int64_t> lo, hi;
    for (int64_t j = 0; j < n; ++j) {
      lo.push_back((j & s) ? n + j - s : j);
      hi.push_back((j & s) ? n + j : j + s);
    }
    for (int64_t j = 0; j < n; ++j) {
      if (j & s)
        continue;
      Value x = rows[j], y = rows[j + s];
      rows[j] = vector::ShuffleOp::create(b, x, y, lo);
      rows[j + s] = vector::ShuffleOp::create(b, x, y, hi);
    }
  }
  return rows;
}
