//===- ReadSoftmaxBf16.cpp - the softmax read on AVX512-BF16 dot products -===//
//
// Part of the femc project.
//
// The bf16 softmax read of one workgroup with both contractions on
// vdpbf16ps (x86vector.avx512.dot: 16 lanes, each the f32 sum of two bf16
// products added to an f32 accumulator). Everything else is the f32 read's
// (ReadSoftmax.cpp, SoftmaxReadEmitter): the pre-pass, the column mask, the
// online softmax with query rows on vector lanes, the f32 accumulator
// (rows x 2*dvp) and the epilogue. What differs is the operands' layout: a
// dot product multiplies adjacent bf16 pairs, so the reduction axis of each
// contraction is packed in pairs, one pair per 32-bit unit, and one operand
// is a pair broadcast to every lane (an embedded {1to16} broadcast):
//
//   qP[j][d/2][r]   = (q[t0+r][d], q[t0+r][d+1])   once per workgroup
//   kP[s][d/2]      = (k[s][d], k[s][d+1])         once per key tile, for
//                                                   every head of the group
//   S^T[s][r..r+16] = sum over d/2 of dot(bcast kP[s][d/2], qP[j][d/2][r..])
//   panelP[s/2][c]  = ([clip(v) | X][s][c], [clip(v) | X][s+1][c])
//   panelLoP        = the same pairs of X - bf16(X) (0 on the clip(v) half)
//   pP[s/2][r]      = (P[r][s], P[r][s+1])          P rounded to bf16 once
//   acc[r][c..c+16] = alpha[r] * acc[r][c..] +
//                     sum over s/2 of dot(bcast pP[s/2][r], panelP[s/2][c..])
//                                 and of dot(bcast pP[s/2][r], panelLoP[..])
//                                     on the X half
//
// so the inner loops are loads of packed vectors and dot products on
// register-blocked accumulators (keyBlock keys x scoreRowVecs row vectors;
// rowBlock rows x colBlock channel vectors), as the f32 read's FMAs are.
//
// Numerics: q, k, v are bf16 already (clip(v) is v, or the bound rounded
// to bf16); P is rounded to bf16 once, and the row sum l adds the rounded
// weights, so mu and Z are averages under weights off by 2^-9, not sums off
// by 2^-9 of themselves; X is a pair of bf16, hi + lo (2^-18 of X: one more
// dot product per key pair and channel of the X half), because F = (log Z +
// M)/beta turns a relative error of Z into an absolute one of 1/beta times
// it, which with X in one bf16 reached 9.7x the bf16 tolerance
// (spec_fuzz seed 9601). It centres its tilt as the f32 read does (X - 1
// around the values' mean where the span allows, ReadSoftmax.cpp's
// pre-pass): 16 bits of X - 1 then round relative to the small terms of a
// row's bulk, where the max shift left every term off by 2^-17 of ~1 (a
// needle at the last of 4096 keys, output ~spread/S: 1.35x the tolerance
// with the max shift, 0.39x centred; spec_fuzz seed 20261202 index 323).
// Every sum, the softmax state and the epilogue are f32. On the spec_fuzz
// draws the outputs agree with the double reference to within the bf16
// tolerance, 1e-2 of max|out| (docs/semantics.md).
//
//===----------------------------------------------------------------------===//
#include "passes/cpu/ReadSoftmax.h"
#include "passes/cpu/ReadSoftmaxAmx.h"

#include "mlir/Dialect/X86Vector/X86VectorDialect.h"

using namespace mlir;
using namespace mlir::fem;
using namespace mlir::fem::cpu;

/// Only on request (`--target=<cpu>+bf16dot`, which stamps kBf16DotFeature):
/// on Intel Sapphire/Emerald Rapids vdpbf16ps retires half the multiply-adds
/// per cycle of f32 FMAs, and this read is slower than the f32 read there
/// (docs/benchmarks.md, "bf16"). AMX, where the target has it, comes first.
bool mlir::fem::cpu::useBf16DotSoftmaxRead(TileReadOp op) {
  if (op.getKind() != PriorKind::softmax || op.getTiles().getVec() != 16)
    return false;
  if (!storage::elementType(op.getQ()).isBF16())
    return false;
  if (targetHasFeature(op, "amx-tile") && targetHasFeature(op, "amx-bf16"))
    return false;
  return targetHasFeature(op, "avx512bf16") &&
         targetHasFeature(op, kBf16DotFeature);
}

namespace {

/// 12 rows x 2 vectors of 16 channels and 8 keys x 3 vectors of 16 rows:
/// 24 accumulators each, with the loaded vectors and the broadcast pair 28
/// of the 32 zmm registers.
constexpr SoftmaxReadEmitter::Blocking kBf16Blocking = {
    /*rowBlock=*/12, /*colBlock=*/2, /*keyBlock=*/8, /*scoreRowVecs=*/3};

class Bf16DotReadEmitter : public SoftmaxReadEmitter {
public:
  explicit Bf16DotReadEmitter(TileReadOp op)
      : SoftmaxReadEmitter(op, kBf16Blocking) {
    i32 = b.getI32Type();
    vi32 = VectorType::get({16}, i32);
    pairs = VectorType::get({32}, b.getBF16Type());
    halfBf16 = VectorType::get({16}, b.getBF16Type());
  }

protected:
  void allocOperands() override;
  void packQuery(Value j, Value h) override;
  void packKeys(Value s0, Value ncols) override;
  void emitPanel(Value j, Value s0, Value ncols) override;
  void emitScores(Value j, Value h, Value s0, Value ncols,
                  Value rowStart) override;
  void emitContraction(Value j, Value ncols, Value rowStart) override;
  /// P as the contraction multiplies it, bf16, so that l sums the same
  /// weights as acc: mu and Z are then averages under slightly perturbed
  /// weights (an error ~2^-9 of the values' spread under them), not sums
  /// whose weights are off by 2^-9 against l (an error ~2^-9 of Z itself,
  /// which F's 1/beta turns into 2^-9/beta).
  Value contractedWeight(Value p) override { return roundBf16(p); }

private:
  /// A 64-byte aligned i32 scratch buffer (one bf16 pair per element).
  Value allocPairs(ArrayRef<int64_t> shape, ValueRange dyn) {
    Value m = memref::AllocOp::create(b, MemRefType::get(shape, i32), dyn,
                                      b.getI64IntegerAttr(64));
    scratch.push_back(m);
    return m;
  }
  /// 16 packed pairs at m[i] as the 32 bf16 a dot product takes.
  Value loadPairs(Value m, ValueRange i) {
    return vector::BitCastOp::create(b, pairs,
                                     vector::LoadOp::create(b, vi32, m, i));
  }
  /// The pair m[i] in every lane.
  Value broadcastPair(Value m, ValueRange i) {
    return vector::BitCastOp::create(
        b, pairs,
        vector::BroadcastOp::create(b, vi32, memref::LoadOp::create(b, m, i)));
  }
  /// Two f32 vectors rounded to bf16 (nearest even) and interleaved lane by
  /// lane: (lo[0], hi[0], lo[1], hi[1], ...), 16 pairs as i32.
  Value packPairs(Value lo, Value hi) {
    SmallVector<int64_t> order;
    for (int64_t p = 0; p < 16; ++p) {
      order.push_back(p);
      order.push_back(16 + p);
    }
    Value both = vector::ShuffleOp::create(
        b, arith::TruncFOp::create(b, halfBf16, lo),
        arith::TruncFOp::create(b, halfBf16, hi), order);
    return vector::BitCastOp::create(b, vi32, both);
  }
  Value dot(Value accumulator, Value x, Value y) {
    return x86vector::DotBF16Op::create(b, accumulator, x, y);
  }
  /// x rounded to bf16 (nearest even), in f32.
  Value roundBf16(Value x) {
    return arith::ExtFOp::create(
        b, vf, Value(arith::TruncFOp::create(b, halfBf16, x)));
  }

  Type i32;
  VectorType vi32, pairs, halfBf16;
  Value dkPairs, dkPairsPad;
  Value qP, kP, panelP, panelLoP, pP;
};

void Bf16DotReadEmitter::allocOperands() {
  constexpr int64_t dyn = ShapedType::kDynamic;
  dkPairs = ceilDiv(dk, idx(2));
  dkPairsPad = roundUp(dkPairs, cLanes);
  scoresT = alloc({bk, bqPad}, {});
  qP = allocPairs({dyn, dyn, bqPad}, {group, dkPairs});
  kP = allocPairs({bk, dyn}, {dkPairsPad});
  panelP = allocPairs({bk / 2, dyn}, {width});
  pP = allocPairs({bk / 2, bqPad}, {});
  // The low halves of X; the clip(v) half of this panel stays 0 (the
  // contraction multiplies its last block below dvp, loFrom, when dvp is
  // not a multiple of colBlock vectors).
  panelLoP = allocPairs({bk / 2, dyn}, {width});
  Value zero = arith::ConstantOp::create(
      b, vi32, DenseElementsAttr::get(vi32, b.getI32IntegerAttr(0)));
  loop(c0, idx(bk / 2), c1, [&](Value sp) {
    loop(c0, dvp, cLanes, [&](Value c) {
      vector::StoreOp::create(b, zero, panelLoP, ValueRange{sp, c});
    });
  });
}

void Bf16DotReadEmitter::packQuery(Value j, Value h) {
  // Unscaled, as the f32 read's Q^T; rows past the end repeat the last row,
  // the second half of the last pair is 0 when dk is odd. Once per
  // workgroup: scalar code.
  Value zero16 = storage::intConstant(b, b.getI16Type(), 0);
  Value sixteen = storage::intConstant(b, i32, 16);
  loop(c0, cBqPad, c1, [&](Value r) {
    Value t = minI(add(t0, r), sub(T, c1));
    loop(c0, dkPairs, c1, [&](Value dp) {
      Value d = mul(dp, idx(2));
      Value d1 = add(d, c1);
      Value lo = storage::loadBits(b, op.getQ(), at(batch, t, h, d));
      Value hi = storage::loadBits(b, op.getQ(),
                                   at(batch, t, h, minI(d1, sub(dk, c1))));
      hi = select(arith::CmpIOp::create(b, arith::CmpIPredicate::slt, d1, dk),
                  hi, zero16);
      Value pair = arith::OrIOp::create(
          b, arith::ExtUIOp::create(b, i32, lo),
          arith::ShLIOp::create(b, arith::ExtUIOp::create(b, i32, hi), sixteen));
      memref::StoreOp::create(b, pair, qP, ValueRange{j, dp, r});
    });
  });
}

void Bf16DotReadEmitter::packKeys(Value s0, Value ncols) {
  // The key rows as pairs of dims (they are pairs in memory already), 0
  // past dk; rows past the end repeat the last key (emitScores reads whole
  // key blocks, whose scores past ncols are never read).
  auto mask32 = VectorType::get({32}, b.getI1Type());
  Value zero = arith::ConstantOp::create(
      b, pairs, DenseElementsAttr::get(pairs, b.getZeroAttr(b.getBF16Type())));
  Value kb = idx(blocking.keyBlock);
  loop(c0, roundUp(ncols, kb), c1, [&](Value col) {
    Value key = minI(add(s0, col), sub(S, c1));
    loop(c0, dkPairsPad, cLanes, [&](Value dp) {
      Value d = mul(dp, idx(2));
      Value dimsLeft =
          vector::CreateMaskOp::create(b, mask32, ValueRange{sub(dk, d)});
      Value x = vector::MaskedLoadOp::create(
          b, pairs, op.getK(), ValueRange(at(batch, key, kvHead, d)), dimsLeft,
          zero);
      vector::StoreOp::create(b, vector::BitCastOp::create(b, vi32, x), kP,
                              ValueRange{col, dp});
    });
  });
}

void Bf16DotReadEmitter::emitPanel(Value j, Value s0, Value ncols) {
  // Pairs of keys (2sp, 2sp + 1) per channel; a second key past the tile
  // (ncols odd) is not kept, so it is 0 (its load repeats the last key).
  loop(c0, ceilDiv(ncols, idx(2)), c1, [&](Value sp) {
    Value col0 = mul(sp, idx(2));
    Value col1 = add(col0, c1);
    Value key1 = minI(add(s0, col1), sub(S, c1));
    Value keep0 = op.getMask() ? keyKept(col0) : Value();
    Value keep1 = keyKept(col1);
    loop(c0, dvp, cLanes, [&](Value c) {
      auto [clip0, tilt0] = panelValues(j, add(s0, col0), c, keep0);
      auto [clip1, tilt1] = panelValues(j, key1, c, keep1);
      vector::StoreOp::create(b, packPairs(clip0, clip1), panelP,
                              ValueRange{sp, c});
      vector::StoreOp::create(b, packPairs(tilt0, tilt1), panelP,
                              ValueRange{sp, add(dvp, c)});
      // X = hi + lo: X - hi is exact in f32, and its bf16 rounding leaves
      // X off by 2^-18 of itself (2^-9 with hi alone).
      vector::StoreOp::create(b,
                              packPairs(fsub(tilt0, roundBf16(tilt0)),
                                        fsub(tilt1, roundBf16(tilt1))),
                              panelLoP, ValueRange{sp, add(dvp, c)});
    });
  });
}

void Bf16DotReadEmitter::emitScores(Value j, Value, Value, Value ncols,
                                    Value rowStart) {
  scoreBlocks(
      ncols, rowStart, dkPairs, [](Value) { return SmallVector<Value>(); },
      [&](Value dp, Value rowVector) {
        return loadPairs(qP, {j, dp, rowVector});
      },
      [&](Value dp, Value col, int64_t i, ArrayRef<Value>) {
        return broadcastPair(kP, {add(col, idx(i)), dp});
      },
      [&](Value sum, Value k, Value q) { return dot(sum, k, q); });
}

void Bf16DotReadEmitter::emitContraction(Value j, Value ncols,
                                         Value rowStart) {
  // P (f32 in scoresT, rows on lanes) rounded to bf16 pairs of keys; a
  // second key past the tile is 0.
  Value keyPairs = ceilDiv(ncols, idx(2));
  loop(c0, keyPairs, c1, [&](Value sp) {
    Value col0 = mul(sp, idx(2));
    Value col1 = add(col0, c1);
    Value second = bcast(
        arith::CmpIOp::create(b, arith::CmpIPredicate::slt, col1, ncols));
    loop(floorTo(rowStart, cLanes), roundUp(rows, cLanes), cLanes,
         [&](Value rv) {
           Value p0 = vload(scoresT, {col0, rv});
           Value p1 = select(second, vload(scoresT, {col1, rv}), splat(0.0f));
           vector::StoreOp::create(b, packPairs(p0, p1), pP,
                                   ValueRange{sp, rv});
         });
  });
  accumulateBlocks(
      j, keyPairs, rowStart,
      [&](Value sp, Value c) {
        return loadPairs(panelP, {sp, c});
      },
      [&](Value sp, Value row) {
        return broadcastPair(pP, {sp, row});
      },
      [&](Value sum, Value p, Value v) { return dot(sum, p, v); },
      /*rowSteps=*/nullptr,
      [&](Value sp, Value c) {
        return loadPairs(panelLoP, {sp, c});
      },
      /*loFrom=*/floorTo(dvp, idx(blocking.colBlock * lanes)));
}

} // namespace

LogicalResult mlir::fem::cpu::lowerTileReadToBf16Dot(TileReadOp op) {
  if (failed(verifyBf16ReadOperands(op, "the AVX512-BF16 read")) ||
      failed(SoftmaxReadEmitter::checkTiles(op, kBf16Blocking)))
    return failure();
  Bf16DotReadEmitter emitter(op);
  return emitter.emit();
}
