//===- ScanMath.h - lane folds and a bounded exp for the scan reads -*- C++
//-*-===//
//
// Two pieces of arithmetic the scan emitters' per-row passes share:
//
// laneTree: vector.reduction of f32 lanes lowers on x86 to a chain as long
// as the vector: maxnumf/minnumf (NaN-aware maxnum) to one scalar compare,
// max and blend per lane, add (ordered, no reassociation) to one scalar add
// per lane, each waiting on the last: at 16 lanes 45 and 16 dependent
// instructions. The scan reads reduce each row's q and gate this way (max,
// least, sum of squares) between passes that need the result, so the chain
// sits on every row's path (Zen 4, aft: docs/benchmarks.md "Scan priors").
// laneTree folds the halves instead: log2(lanes) steps of a shuffle and one
// vector op.
//
// expNonPositiveExact: e^x for x <= 0 (or NaN), the math dialect's
// polynomial (populateMathPolynomialApproximationPatterns, the one math.exp
// becomes) without the clamps that only act above 0: bit for bit
// math.exp's value. (The softmax read's expNonPositive, ReadSoftmax.cpp, is
// another, shorter polynomial with a 2^K scale: not math.exp's bits.)
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_PASSES_CPU_SCANMATH_H
#define FEMC_PASSES_CPU_SCANMATH_H

#include "passes/cpu/Builder.h"

namespace mlir::fem::cpu {

enum class LaneFold { Max, Min, Add };

/// The lanes of `v` (f32; a power of two of them, else vector.reduction)
/// folded pairwise into a
/// vector<1xf32>, which a vector.reduction (e.g. in
/// EmitterBuilder::gateNormDivisor) takes as its one element. Max and Min
/// are EmitterBuilder::fmax/fmin (compare and select; a NaN in the lower
/// half gives the upper half's lane): the same value as maxnumf/minnumf
/// wherever no lane is NaN, as the callers' lanes are not (their running
/// max/min skip NaN). Add sums in a tree, not lane by lane: the sum may
/// differ from the ordered one in its last bits (exact for sums of
/// integers, e.g. lanes of u = 1).
inline Value laneTree(EmitterBuilder &e, Value v, LaneFold fold) {
  int64_t n = cast<VectorType>(v.getType()).getNumElements();
  if (!llvm::isPowerOf2_64(n)) { // not emitted (lanes are 4, 8, 16, 32, 64)
    auto kind = fold == LaneFold::Max   ? vector::CombiningKind::MAXNUMF
                : fold == LaneFold::Min ? vector::CombiningKind::MINNUMF
                                        : vector::CombiningKind::ADD;
    return vector::BroadcastOp::create(
        e.b, VectorType::get({1}, e.f32),
        vector::ReductionOp::create(e.b, kind, v));
  }
  while (n > 1) {
    int64_t h = n / 2;
    SmallVector<int64_t> lo, hi;
    for (int64_t i = 0; i < h; ++i) {
      lo.push_back(i);
      hi.push_back(h + i);
    }
    Value a = vector::ShuffleOp::create(e.b, v, v, lo);
    Value c = vector::ShuffleOp::create(e.b, v, v, hi);
    v = fold == LaneFold::Max   ? e.fmax(a, c)
        : fold == LaneFold::Min ? e.fmin(a, c)
                                : e.fadd(a, c);
    n = h;
  }
  return v;
}

/// laneTree's element as a scalar.
inline Value laneTreeScalar(EmitterBuilder &e, Value v, LaneFold fold) {
  return vector::ExtractOp::create(e.b, laneTree(e, v, fold), 0);
}

/// e^x for vector x <= 0 (or NaN; x >= -87.8 too unless clampLow): the
/// math dialect's expansion of math.exp (Cephes' polynomial, n = floor(x
/// log2(e) + 1/2), 2^n built in the exponent bits) without its clamps of x
/// to [-87.8, 88.8] and of n to [-127, 127], which change nothing there: x
/// <= 0 gives n <= 0, x >= -87.8 gives n >= -127 (2^n = 0 at n = -127, as
/// math.exp flushes). Bit for bit math.exp's value, four ops fewer
/// (clampLow keeps the clamp of x at -87.8, for arguments that may lie
/// below it).
inline Value expNonPositiveExact(EmitterBuilder &e, Value x, bool clampLow) {
  auto c = [&](float v) { return e.cstLike(x, v); };
  auto fma = [&](Value a, Value b, Value acc) -> Value {
    return math::FmaOp::create(e.b, a, b, acc);
  };
  if (clampLow) // select(x uge -87.8, x, -87.8): NaN passes, as math.exp's
    x = e.select(e.fcmp(arith::CmpFPredicate::UGE, x, c(-87.8f)), x, c(-87.8f));
  Value n =
      math::FloorOp::create(e.b, fma(x, c(1.44269504088896341f), c(0.5f)));
  x = fma(c(-0.693359375f), n, x);
  x = fma(c(2.12194440e-4f), n, x);
  Value z = fma(x, c(1.9875691500E-4f), c(1.3981999507E-3f));
  z = fma(z, x, c(8.3334519073E-3f));
  z = fma(z, x, c(4.1665795894E-2f));
  z = fma(z, x, c(1.6666665459E-1f));
  z = fma(z, x, c(5.0000001201E-1f));
  z = fma(z, e.fmul(x, x), x);
  z = e.fadd(c(1.0f), z);
  Type i32 = storage::shapedLike(x, e.b.getI32Type());
  Value bits = arith::ShLIOp::create(
      e.b,
      arith::AddIOp::create(e.b, arith::FPToSIOp::create(e.b, i32, n),
                            storage::intConstant(e.b, i32, 127)),
      storage::intConstant(e.b, i32, 23));
  return e.fmul(z, arith::BitcastOp::create(e.b, x.getType(), bits));
}

} // namespace mlir::fem::cpu

#endif // FEMC_PASSES_CPU_SCANMATH_H
