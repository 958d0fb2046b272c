//===- LowerScanRead.cpp - fem.scan_read → scf/vector/memref/math ----------===//
//
// Checks what the CPU emitters assume and dispatches on the prior table's
// read algorithm (dialect/Priors.h) to one emitter per algorithm.
//
//===----------------------------------------------------------------------===//
#include "passes/cpu/LowerScanRead.h"
#include "passes/cpu/ScanRead.h"
#include "passes/Passes.h"

#define DEBUG_TYPE "fem-lower-scans-to-cpu"

using namespace mlir;
using namespace mlir::fem;

void cpu::ScanState::begin() {
  int64_t cb = w.cb;
  seen = e.alloc({cb}, {});
  scaleX = e.alloc({cb}, {});
  low = e.alloc({cb}, {});
  seenOut = e.alloc({cb}, {});
  normCoef = e.alloc({cb}, {});
  if (!in() && !out())
    return;
  bool squash = getPriorInfo(op.getKind()).squashValues;
  Value negInf = e.splat(-std::numeric_limits<float>::infinity());
  Value posInf = e.splat(std::numeric_limits<float>::infinity());
  // The segment's own range (the pre-pass keeps only its max): min and
  // "some key" of beta*clipped over the unmasked keys.
  e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
    Value lanesLeft = e.mask(e.sub(w.cw, cv));
    SmallVector<Value> red = e.loop(
        w.c0i, w.S, w.c1i, {negInf, posInf}, [&](Value s, ValueRange it) {
          Value v = e.vloadMasked(
              op.getV(), e.at(w.batch, s, w.kvHead, e.add(w.chan0, cv)),
              lanesLeft);
          Value hi = e.fmax(v, it[0]), lo = e.fmin(v, it[1]);
          if (Value keep = streams.keyKept(s)) {
            hi = e.select(keep, hi, it[0]);
            lo = e.select(keep, lo, it[1]);
          }
          return SmallVector<Value>{hi, lo};
        });
    Value any = e.fcmp(arith::CmpFPredicate::UNE, red[0], negInf);
    Value lo = squash ? e.sigmoid(red[1]) : red[1];
    Value bnd = e.vload(streams.bound, {cv});
    lo = e.fmul(e.vload(streams.beta, {cv}), e.clamp(lo, e.neg(bnd), bnd));
    e.vstore(e.select(any, lo, e.splat(0.0f)), low, {cv});
    e.vstore(e.select(any, e.splat(1.0f), e.splat(0.0f)), seenOut, {cv});
    e.vstore(e.splat(0.0f), seen, {cv});
    e.vstore(e.splat(0.0f), scaleX, {cv});
  });
  if (!in())
    return;
  Value one = e.cst(1.0f), zero = e.cst(0.0f), half = e.cst(0.5f);
  e.loop(w.c0i, w.cw, w.c1i, [&](Value c) {
    Value carried = e.fcmp(arith::CmpFPredicate::OGT,
                           load(c, femc::priors::kStateSeen), half);
    Value mState = load(c, femc::priors::kStateShift);
    Value lState = load(c, femc::priors::kStateLow);
    Value mSeg = e.load(streams.shift, {c}), lSeg = e.load(low, {c});
    Value any = e.fcmp(arith::CmpFPredicate::OGT, e.load(seenOut, {c}), half);
    Value m = e.select(carried, e.select(any, e.fmaxNaN(mState, mSeg), mState),
                       mSeg);
    // min(L_state, L_segment) with a NaN from either side, as M's max (a
    // NaN beta makes the segment's L NaN): -max(-a, -b), negation exact.
    Value lMerged = e.neg(e.fmaxNaN(e.neg(lState), e.neg(lSeg)));
    Value l = e.select(carried, e.select(any, lMerged, lState), lSeg);
    Value narrow = e.fcmp(arith::CmpFPredicate::OLE, e.fsub(m, l),
                          e.cst(femc::priors::kNarrowRange));
    Value offset = e.select(carried, e.select(narrow, one, zero),
                            e.load(streams.offset, {c}));
    // xSumFromRecord's k: the record's own offset (recordNarrow) against
    // the merged one. Where both are 1, D = M_state - M lies in [-ln 2, 0]
    // (M - L <= ln 2 and L <= L_state <= M_state), expm1Narrow's range.
    Value recordNarrow = e.fcmp(arith::CmpFPredicate::OLE,
                                e.fsub(mState, lState),
                                e.cst(femc::priors::kNarrowRange));
    Value d = e.fsub(mState, m), scale = e.exp(d);
    Value coef = e.select(
        recordNarrow, e.select(narrow, e.expm1Narrow(d), scale),
        e.select(narrow, e.cst(-1.0f), zero));
    e.store(m, streams.shift, {c});
    e.store(offset, streams.offset, {c});
    e.store(l, low, {c});
    e.store(e.select(carried, one, zero), seen, {c});
    e.store(e.select(carried, scale, zero), scaleX, {c});
    e.store(e.select(carried, coef, zero), normCoef, {c});
    e.store(e.select(arith::OrIOp::create(e.b, carried, any), one, zero),
            seenOut, {c});
  });
  streams.classifyVectors();
}

Value cpu::ScanState::load(Value c, Value slot) {
  return e.load(op.getState(), {w.batch, w.head, e.add(w.chan0, c), slot});
}

void cpu::ScanState::store(Value c, Value slot, Value v) {
  e.store(v, op.getStateOut(), {w.batch, w.head, e.add(w.chan0, c), slot});
}

Value cpu::ScanState::xSumFromRecord(Value c, Value stored, Value norm) {
  Value moved = e.fmul(e.load(scaleX, {c}), stored);
  Value k = e.load(normCoef, {c});
  Value none = e.fcmp(arith::CmpFPredicate::OEQ, k, e.cst(0.0f));
  return e.select(none, moved, e.fadd(moved, e.fmul(k, norm)));
}

Value cpu::ScanState::xSumToRecord(Value c, Value norm, Value shifted) {
  Value narrow = e.fcmp(arith::CmpFPredicate::OGT,
                        e.load(streams.offset, {c}), e.cst(0.5f));
  Value recordNarrow = arith::AndIOp::create(
      e.b,
      e.fcmp(arith::CmpFPredicate::OGT, e.load(seenOut, {c}), e.cst(0.5f)),
      e.fcmp(arith::CmpFPredicate::OLE,
             e.fsub(e.load(streams.shift, {c}), e.load(low, {c})),
             e.cst(femc::priors::kNarrowRange)));
  Value same = arith::CmpIOp::create(e.b, arith::CmpIPredicate::eq, narrow,
                                     recordNarrow);
  // The read narrow, the record not: the plain sum norm + shifted, and
  // norm itself where it is infinite (X lies in [1/2, 1], so the X sum is
  // that infinity too, which norm + shifted would make inf - inf = NaN).
  Value infinite =
      e.fcmp(arith::CmpFPredicate::OEQ, math::AbsFOp::create(e.b, norm),
             e.cst(std::numeric_limits<float>::infinity()));
  Value plain = e.select(infinite, norm, e.fadd(norm, shifted));
  return e.select(same, shifted,
                  e.select(narrow, plain, e.fsub(shifted, norm)));
}

void cpu::ScanState::finish() {
  if (!out())
    return;
  e.loop(w.c0i, w.cw, w.c1i, [&](Value c) {
    store(c, femc::priors::kStateShift, e.load(streams.shift, {c}));
    store(c, femc::priors::kStateLow, e.load(low, {c}));
    store(c, femc::priors::kStateSeen, e.load(seenOut, {c}));
  });
}

LogicalResult mlir::fem::cpu::lowerScanReadToCPU(ScanReadOp op) {
  SmallVector<Value> floats = {op.getV(), op.getBetaRaw(), op.getLam(),
                               op.getGate(), op.getOut()};
  for (Value v : {op.getQ(), op.getK(), op.getDecay(), op.getDelta(),
                  op.getA(), op.getBs(), op.getCs(), op.getD(), op.getState(),
                  op.getStateOut()})
    if (v)
      floats.push_back(v);
  for (Value v : floats) {
    auto type = cast<MemRefType>(v.getType());
    if (!cpu::storage::isSupported(type.getElementType()) ||
        !type.getLayout().isIdentity())
      return op.emitError() << "fem-lower-to-cpu: expects f32, f16 or bf16 "
                               "memrefs with the identity layout, found "
                            << v.getType();
  }
  if (failed(cpu::verifyMaskBytes(op, op.getMask(), "fem-lower-to-cpu")))
    return failure();
  switch (getPriorInfo(op.getKind()).algorithm) {
  case femc::priors::ReadAlgorithm::ChunkedLinear:
    cpu::emitChunkedLinearRead(op);
    return success();
  case femc::priors::ReadAlgorithm::AftScan:
    cpu::emitAftScanRead(op);
    return success();
  case femc::priors::ReadAlgorithm::SsmScan:
    cpu::emitSsmScanRead(op);
    return success();
  case femc::priors::ReadAlgorithm::OnlineSoftmax:
    break;
  }
  return op.emitError() << "fem-lower-to-cpu: prior '"
                        << stringifyPriorKind(op.getKind())
                        << "' is not read by a scan";
}

namespace mlir::fem {
#define GEN_PASS_DEF_FEMLOWERSCANSTOCPU
#include "passes/Passes.h.inc"
} // namespace mlir::fem

namespace {
struct FEMLowerScansToCPUPass
    : public fem::impl::FEMLowerScansToCPUBase<FEMLowerScansToCPUPass> {
  void runOnOperation() override {
    SmallVector<ScanReadOp> reads;
    getOperation().walk([&](ScanReadOp op) { reads.push_back(op); });
    for (ScanReadOp op : reads)
      if (failed(cpu::lowerScanReadToCPU(op)))
        return signalPassFailure();
  }
};
} // namespace
