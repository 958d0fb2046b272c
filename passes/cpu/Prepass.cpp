//===- Prepass.cpp - the shift pre-pass and value panel of scan reads -------===//
//
// beta = softplus(beta_raw) + eps, bound = cap/beta and the shift
// M = max over the (unmasked) keys of beta*clamp(v, +-bound) for the block's
// channels. beta* and the clamp (and the ssm squash) are monotone, so M is
// taken from the max of the raw values: one pass over the kv head's values.
// A NaN value makes M NaN, as the reference's max does.
//
//===----------------------------------------------------------------------===//
#include "passes/cpu/ScanRead.h"

using namespace mlir;
using namespace mlir::fem;
using namespace mlir::fem::cpu;

ScanWorkgroup mlir::fem::cpu::setUpScanWorkgroup(EmitterBuilder &e,
                                                 ScanReadOp op) {
  ScanWorkgroup w;
  w.c0i = e.idx(0);
  w.c1i = e.idx(1);
  w.cLanes = e.idx(e.lanes);
  w.cb = op.getTiles().getK();
  w.chunk = op.getTiles().getQ();
  unsigned ta = timeAxis(op.getLayout()), ha = headAxis(op.getLayout());
  w.T = e.dim(op.getOut(), ta);
  w.S = e.dim(op.getV(), ta);
  w.H = e.dim(op.getOut(), ha);
  w.hkv = e.dim(op.getV(), ha);
  if (op.getQ())
    w.dk = e.dim(op.getQ(), 3);
  w.dv = e.dim(op.getOut(), 3);
  w.batch = op.getWgZ();
  w.head = op.getWgY();
  w.kvHead = e.divI(w.head, e.divI(w.H, w.hkv));
  w.chan0 = e.mul(op.getWgX(), e.idx(w.cb));
  w.cw = e.minI(e.idx(w.cb), e.sub(w.dv, w.chan0));
  w.cwp = e.roundUp(w.cw, w.cLanes);
  w.eps = e.cst(static_cast<float>(op.getEpsAttr().getValueAsDouble()));
  return w;
}

Value ValueStreams::keyKept(Value s) {
  Value keyMask = op.getMask();
  if (!keyMask)
    return Value();
  return arith::CmpIOp::create(
      e.b, arith::CmpIPredicate::ne, e.load(keyMask, {w.batch, s}),
      arith::ConstantIntOp::create(e.b, e.b.getI8Type(), 0));
}

void ValueStreams::emit() {
  float capValue = static_cast<float>(op.getCapAttr().getValueAsDouble());
  bool squash = getPriorInfo(op.getKind()).squashValues;
  beta = e.alloc({w.cb}, {});
  bound = e.alloc({w.cb}, {});
  shift = e.alloc({w.cb}, {});
  offset = e.alloc({w.cb}, {});
  invBeta = e.alloc({w.cb}, {});
  Value negInf = e.cst(-std::numeric_limits<float>::infinity());
  Value posInf = e.cst(std::numeric_limits<float>::infinity());
  e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
    Value lanesLeft = e.mask(e.sub(w.cw, cv));
    Value noNan = arith::ConstantOp::create(
        e.b, e.vi1, DenseElementsAttr::get(e.vi1, false));
    SmallVector<Value> red = e.loop(
        w.c0i, w.S, w.c1i, {e.bcast(negInf), e.bcast(posInf), noNan},
        [&](Value s, ValueRange it) {
          Value v = e.vloadMasked(
              op.getV(), e.at(w.batch, s, w.kvHead, e.add(w.chan0, cv)),
              lanesLeft);
          Value hi = e.fmax(v, it[0]);
          Value lo = e.fmin(v, it[1]);
          Value nan = arith::OrIOp::create(
              e.b, it[2], e.fcmp(arith::CmpFPredicate::UNO, v, v));
          if (Value keep = keyKept(s)) {
            hi = e.select(keep, hi, it[0]);
            lo = e.select(keep, lo, it[1]);
            nan = e.select(keep, nan, it[2]);
          }
          return SmallVector<Value>{hi, lo, nan};
        });
    Value hi = red[0], lo = red[1];
    // No key at all: M = 0 (it cancels anyway).
    Value none = e.fcmp(arith::CmpFPredicate::OEQ, hi, e.bcast(negInf));
    if (squash) {
      hi = e.sigmoid(hi);
      lo = e.sigmoid(lo);
    }
    Value raw = e.vloadMasked(
        op.getBetaRaw(),
        {e.add(e.mul(w.head, w.dv), e.add(w.chan0, cv))}, lanesLeft);
    Value b = e.fadd(e.softplus(raw), e.bcast(w.eps));
    Value bnd = e.fdiv(e.splat(capValue), b);
    Value negBnd = e.neg(bnd);
    Value maxV = e.fmul(b, e.clamp(hi, negBnd, bnd));
    Value minV = e.fmul(b, e.clamp(lo, negBnd, bnd));
    maxV = e.fadd(e.select(none, e.splat(0.0f), maxV),
                  e.select(red[2], e.splat(NAN), e.splat(0.0f)));
    Value narrow = e.fcmp(arith::CmpFPredicate::OLE, e.fsub(maxV, minV),
                          e.splat(0.69314718f));
    e.vstore(b, beta, {cv});
    e.vstore(e.fdiv(e.splat(1.0f), b), invBeta, {cv});
    e.vstore(bnd, bound, {cv});
    e.vstore(maxV, shift, {cv});
    e.vstore(e.select(narrow, e.splat(1.0f), e.splat(0.0f)), offset, {cv});
  });
}

std::pair<Value, Value> ValueStreams::panel(Value s, Value cv, Value keep) {
  Value lanesLeft = e.mask(e.sub(w.cw, cv));
  Value v = e.vloadMasked(
      op.getV(), e.at(w.batch, s, w.kvHead, e.add(w.chan0, cv)), lanesLeft);
  if (getPriorInfo(op.getKind()).squashValues)
    v = e.sigmoid(v);
  Value bnd = e.vload(bound, {cv});
  Value clipped = e.clamp(v, e.neg(bnd), bnd);
  Value z = e.fsub(e.fmul(e.vload(beta, {cv}), clipped), e.vload(shift, {cv}));
  // X - o: on narrow channels expm1(z), never e^z - 1 (e^z rounds to
  // 1 +- 6e-8, which is all of X - 1 once beta*(max - min) is near 1e-6),
  // as the softmax panel does (ReadSoftmax.cpp).
  Value narrow = e.fcmp(arith::CmpFPredicate::OGT, e.vload(offset, {cv}),
                        e.splat(0.5f));
  Value tilted = e.select(narrow, e.expm1Narrow(z), e.exp(z));
  if (keep) { // masked keys contribute nothing, even if v is not finite
    Value k = e.bcast(keep);
    clipped = e.select(k, clipped, e.splat(0.0f));
    tilted = e.select(k, tilted, e.splat(0.0f));
  }
  return {clipped, tilted};
}
