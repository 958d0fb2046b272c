//===- Epilogue.cpp - log restore and gate of scan reads -------------------===//
//
// Per row t: g+ = softplus(gate) + eps, g = g+ / max(||g+||, 1e-5) * sqrt(dv)
// with the norm over all dv channels of (b, t, h) (a workgroup owns a block
// of them, so the norm is taken from the gate logits of the whole row); per
// channel F = (logaddexp(log Z, log tiny - M) + M) / beta with log Z = -inf
// where Z <= 0, lambda = sigmoid(lam), out = g * ((1 - lambda) mu + lambda F).
//
// Cost: the row-scale pass keeps g+ (kGateRows rows) so the store does not
// recompute softplus, whose form needs one exp and a log1p polynomial on
// (0, 1] (gateSoftplus: no exponent split, no division). log Z takes one
// log per lane for both the log1p and the log branch
// (EmitterBuilder::log1pOrLog), and a channel vector with no narrow channel
// (the usual case) takes the plain log without the log1p form's division.
// The logaddexp with the
// tiny floor is the softmax epilogue's (logAddExpSorted, ReadSoftmax.h): one
// compare per vector where log Z lies far above the floor (every lane's gap
// below -80; the usual case), else exp and log1p with the gap clamped to
// -80 so that exp never builds a subnormal (each costs a microcode assist:
// that exp alone took 11-16 % of the scans).
// F multiplies by 1/beta (ValueStreams::invBeta) instead of dividing.
//
//===----------------------------------------------------------------------===//
#include "passes/cpu/ReadSoftmax.h"
#include "passes/cpu/ScanMath.h"
#include "passes/cpu/ScanRead.h"

using namespace mlir;
using namespace mlir::fem;
using namespace mlir::fem::cpu;

/// softplus(x) as torch computes it (x for x > 20, else log1p(e^x)), as
/// max(x, 0) + log1p(e^-|x|): one exp whose result u lies in (0, 1], and a
/// log1p that needs no exponent split nor division. 1 + u lies in (1, 2]:
/// for u <= sqrt(2) - 1 the polynomial takes f = u itself (exact, so tiny
/// u keep their bits where (1 + u) - 1 would round them away), above it
/// f = (u - 1) / 2 with ln 2 added back (1 + f = (1 + u) / 2); both f lie in
/// [sqrt(1/2) - 1, sqrt(2) - 1], the range of Cephes' minimax polynomial for
/// log(1 + f) (the one the math dialect's log approximation evaluates after
/// its own range reduction). e^-|x| takes -|x| >= kExpFloor: below it the
/// term (< 2e-35) vanishes next to eps in g+ = softplus + eps, and the exp
/// would build a subnormal (a microcode assist); the polynomial is left out
/// for u < 2^-24 (then f = u), where log1p(u) = u in float and u^3 would
/// underflow. Callers other than the gate pass their own floor instead of
/// kExpFloor (aft's q, ScanRead.h).
Value mlir::fem::cpu::gateSoftplus(EmitterBuilder &e, Value x, float floor) {
  Value zero = e.cstLike(x, 0.0f);
  Value negAbs = e.fmin(x, e.neg(x)); // -|x| (NaN passes)
  // The exp's argument lies in [floor, 0] (or is NaN): math.exp's value
  // without its clamps (ScanMath.h).
  Value arg = e.fmax(e.cstLike(x, floor), negAbs);
  Value u = isa<VectorType>(x.getType())
                ? expNonPositiveExact(e, arg, /*clampLow=*/false)
                : e.exp(arg);
  Value big = e.fcmp(arith::CmpFPredicate::OGT, u,
                     e.cstLike(x, 0.41421356f));
  Value f = e.select(big, e.fmul(e.fsub(u, e.cstLike(x, 1.0f)),
                                 e.cstLike(x, 0.5f)),
                     u);
  static constexpr float kP[] = {7.0376836292e-2f,  -1.1514610310e-1f,
                                 1.1676998740e-1f,  -1.2420140846e-1f,
                                 1.4249322787e-1f,  -1.6668057665e-1f,
                                 2.0000714765e-1f,  -2.4999993993e-1f,
                                 3.3333331174e-1f};
  Value p = e.cstLike(x, kP[0]);
  for (float c : ArrayRef<float>(kP).drop_front())
    p = e.fma(p, f, e.cstLike(x, c));
  Value f2 = e.fmul(f, f);
  // log(1 + f) = f - f^2/2 + f^3 P(f); ln 2 = 0.693359375 - 2.12194440e-4
  // in two parts, the first exact in float, added last.
  Value y = e.fma(e.fmul(f, f2), p, e.fmul(e.cstLike(x, -0.5f), f2));
  y = e.select(e.fcmp(arith::CmpFPredicate::OLT, u,
                      e.cstLike(x, 5.9604645e-8f)),
               zero, y);
  Value ln2Hi = e.select(big, e.cstLike(x, 0.693359375f), zero);
  Value ln2Lo = e.select(big, e.cstLike(x, -2.12194440e-4f), zero);
  Value log1pU = e.fadd(e.fadd(f, e.fadd(y, ln2Lo)), ln2Hi);
  Value soft = e.fadd(e.fmax(zero, x), log1pU);
  return e.select(e.fcmp(arith::CmpFPredicate::OGT, x, e.cstLike(x, 20.0f)),
                  x, soft);
}

GateEpilogue::GateEpilogue(EmitterBuilder &e, ScanReadOp op,
                           const ScanWorkgroup &w, ValueStreams &streams)
    : e(e), op(op), w(w), streams(streams) {
  gatePlus = e.alloc({kGateRows, ShapedType::kDynamic},
                     {e.roundUp(w.dv, w.cLanes)});
  // Blocks are multiples of lanes wide (tiles.k is a multiple of 2 * vec),
  // so where dv is too every block's vectors are whole.
  int64_t dv = cast<MemRefType>(op.getOut().getType()).getDimSize(3);
  wholeVectors = !ShapedType::isDynamic(dv) && dv % e.lanes == 0;
}

Value GateEpilogue::rowScale(Value t) {
  Value dvp = e.roundUp(w.dv, w.cLanes);
  Value slot = e.remI(t, e.idx(kGateRows));
  // g+ = softplus(gate) + eps, and its norm scaled as hypot does
  // (EmitterBuilder::gateNormDivisor): the slot keeps u = g+ / max g+.
  // The softplus pass in twice the lanes where dv is static and a
  // multiple of them (x inserts where e does): its chain per vector (an
  // exp, nine dependent FMAs) is longer than the reorder buffer covers, and
  // wider ops put more chains side by side (as aft's q pass, ReadAft.cpp).
  int64_t dvS = cast<MemRefType>(op.getOut().getType()).getDimSize(3);
  int64_t lanes = !ShapedType::isDynamic(dvS) && dvS % (2 * e.lanes) == 0
                      ? 2 * e.lanes
                      : e.lanes;
  EmitterBuilder x(op, op.getLayout(), lanes);
  x.b.setInsertionPoint(e.b.getInsertionBlock(), e.b.getInsertionPoint());
  Value gMax = x.loop(
      w.c0i, dvp, x.idx(x.lanes), {x.splat(0.0f)}, [&](Value c, ValueRange it) {
        Value lanesLeft = x.mask(x.sub(w.dv, c));
        Value gl =
            x.vloadMasked(op.getGate(), x.at(w.batch, t, w.head, c), lanesLeft);
        Value gp = x.select(
            lanesLeft, x.fadd(gateSoftplus(x, gl, kExpFloor), x.bcast(w.eps)),
            x.splat(0.0f));
        x.vstore(gp, gatePlus, {slot, c});
        return SmallVector<Value>{x.fmax(gp, it[0])};
      })[0];
  // The lanes' max and sum folded in a tree (ScanMath.h: the ordered
  // reductions are chains of 16-45 dependent scalar ops on every row's
  // path; no lane of gMax is NaN, x.fmax skips NaN g+).
  Value m = e.gateNormDivisor(laneTree(e, gMax, LaneFold::Max));
  Value vm = e.bcast(m);
  Value sq = e.loop(w.c0i, dvp, w.cLanes, {e.splat(0.0f)},
                    [&](Value c, ValueRange it) {
                      Value u = e.fdiv(e.vload(gatePlus, {slot, c}), vm);
                      e.vstore(u, gatePlus, {slot, c});
                      return SmallVector<Value>{e.fma(u, u, it[0])};
                    })[0];
  return e.gateNormScale(e.sqrt(e.toFloat(w.dv)), m,
                         laneTree(e, sq, LaneFold::Add));
}

void GateEpilogue::store(Value t, Value cv, Value scale, Value mu, Value zRead,
                         Value r1m1, Value logScale, Value has) {
  auto body = [&](Value lanesLeft) {
    storeVector(t, cv, scale, mu, zRead, r1m1, logScale, has, lanesLeft);
  };
  if (wholeVectors)
    return body(Value());
  // Only a block's last vector can be partial: whole ones take plain loads
  // and stores (vmaskmovps stores are slow on Zen 2: linear and gla read
  // 4-8 % faster without them, docs/benchmarks.md "Scan priors").
  Value whole = arith::CmpIOp::create(e.b, arith::CmpIPredicate::sle,
                                      e.add(cv, w.cLanes), w.cw);
  e.branch(
      whole, [&] { body(Value()); }, [&] { body(e.mask(e.sub(w.cw, cv))); });
}

void GateEpilogue::storeVector(Value t, Value cv, Value scale, Value mu,
                               Value zRead, Value r1m1, Value logScale,
                               Value has, Value lanesLeft) {
  // lanesLeft null: all lanes lie in the block.
  auto load = [&](Value m, ValueRange i) {
    return lanesLeft ? e.vloadMasked(m, i, lanesLeft) : e.vload(m, i);
  };
  Value channel = e.add(w.chan0, cv);
  Value shift = e.vload(streams.shift, {cv});
  Value negInf = e.splat(-std::numeric_limits<float>::infinity());
  // log Z: log1p(R(X - 1) + R(1) - 1) on channels with offset 1 (narrow or
  // centred, ScanRead.h), else log R(X), with log Z = -inf for Z <= 0 (NaN
  // passes).
  Value narrow = e.fcmp(arith::CmpFPredicate::OGT, e.vload(streams.offset, {cv}),
                        e.splat(0.5f));
  Value zero = e.splat(0.0f);
  // Most vectors have no channel with offset 1 (a causal scan's offset is
  // the running one of its chunk, ChunkShift): those take the plain log,
  // without the log1p form's division (the same lanes either way).
  Value anyNarrow =
      vector::ReductionOp::create(e.b, vector::CombiningKind::OR, narrow);
  Value logZ = storage::ifValue(
      e.b, anyNarrow,
      [&] {
        // With offset 1, Z = 1 + (R(X - 1) + R(1) - 1) lies in
        // [R(1) e^-3, R(1) e^12] (X in [1/2, 1] on a narrow channel, in
        // [e^-kCentreSpan, e^kCentredRange] on a centred one) while no
        // weight is infinite, so
        // Z <= 0 where that sum is <= -1, and also where R(1) - 1 is -inf:
        // a weight of -inf (ssm's Bs, Cs or D) makes R(X) -inf as it makes
        // R(1), X being positive, but its w (X - 1) terms make R(X - 1)
        // +inf or NaN (-inf * 0 at X = 1), and the sum inf - inf.
        Value arg = e.fadd(zRead, r1m1);
        Value positiveNarrow = arith::AndIOp::create(
            e.b, e.fcmp(arith::CmpFPredicate::UGT, arg, e.splat(-1.0f)),
            e.fcmp(arith::CmpFPredicate::UNE, r1m1, negInf));
        Value positive =
            e.select(narrow, positiveNarrow,
                     e.fcmp(arith::CmpFPredicate::UGT, zRead, zero));
        return e.select(positive, e.log1pOrLog(narrow, arg, zRead), negInf);
      },
      [&] {
        return e.select(e.fcmp(arith::CmpFPredicate::UGT, zRead, zero),
                        e.log(zRead), negInf);
      });
  // Z > 0 (or NaN): the log of a positive Z is never -inf (the log1p form's
  // 1 + arg >= 2^-24).
  Value positive = e.fcmp(arith::CmpFPredicate::UNE, logZ, negInf);
  if (logScale)
    logZ = e.fadd(logZ, logScale);
  Value tinyTerm = e.fsub(e.splat(kLogTiny), shift);
  // fmax/fmin return their second operand for NaN: keep log Z there.
  Value hi = e.fmax(tinyTerm, logZ);
  Value lo = e.fmin(tinyTerm, logZ);
  Value lse = logAddExpSorted(e, hi, lo);
  lse = e.select(positive, lse, tinyTerm);
  // + tiny: the floor where logAddExpSorted dropped it (kTiny, Builder.h).
  Value freeEnergy = e.fmul(e.fadd(e.fadd(lse, shift), e.splat(kTiny)),
                            e.vload(streams.invBeta, {cv}));
  if (has) {
    Value vHas = e.bcast(has);
    freeEnergy = e.select(vHas, freeEnergy, e.splat(0.0f));
    mu = e.select(vHas, mu, e.splat(0.0f));
  }
  Value lamLogit = load(op.getLam(), e.at(w.batch, t, w.head, channel));
  Value lambda = e.sigmoid(lamLogit);
  Value mix = e.fadd(e.fmul(e.fsub(e.splat(1.0f), lambda), mu),
                     e.fmul(lambda, freeEnergy));
  // u = g+ / max g+ as rowScale(t) left it (lanes past the block read 0).
  Value gp = load(gatePlus, {e.remI(t, e.idx(kGateRows)), channel});
  Value g = e.fmul(gp, e.bcast(scale));
  Value y = e.fmul(g, mix);
  SmallVector<Value, 4> outAt = e.at(w.batch, t, w.head, channel);
  if (lanesLeft)
    e.vstoreMasked(y, op.getOut(), outAt, lanesLeft);
  else
    e.vstore(y, op.getOut(), outAt);
}
