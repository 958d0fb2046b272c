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
  // The segment's own range: the pre-pass's L and "some key"
  // (ValueStreams::low, anyKey; L is 0 where no key was kept).
  e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
    Value anyKey = e.vload(streams.anyKey, {cv});
    Value any = e.fcmp(arith::CmpFPredicate::OGT, anyKey, e.splat(0.5f));
    e.vstore(e.select(any, e.vload(streams.low, {cv}), e.splat(0.0f)), low,
             {cv});
    e.vstore(anyKey, seenOut, {cv});
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

bool cpu::ChunkShift::applies(ScanReadOp op) {
  // (A split non-causal read's `keys` never meets a causal one: the
  // verifier, FEMPriors.cpp, allows them on non-causal linear only.)
  return femc::priors::keysOnQueryAxis(getPriorInfo(op.getKind()),
                                       op.getCausal());
}

void cpu::ChunkShift::begin() {
  int64_t cb = w.cb;
  for (Value *buf : {&hiRaw, &loRaw, &sumRaw, &pRun, &oRun, &seenRun,
                     &seenNext, &scale, &coef, &pState, &lState})
    *buf = e.alloc({cb}, {});
  // The running NaN flag only where no pass found the NaN values (the
  // pass's flag covers the whole launch); the final (P, o) only for a
  // state out (settle()).
  bool pass = ValueStreams::needsPass(op);
  nanRaw = pass ? Value() : e.alloc({cb}, {});
  if (carried.out()) {
    finalShift = e.alloc({cb}, {});
    finalOffset = e.alloc({cb}, {});
  }
  keptRun = e.alloc({1}, {});
  e.store(e.cst(0.0f), keptRun, {w.c0i});
  e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
    if (finalShift) {
      e.vstore(e.vload(streams.shift, {cv}), finalShift, {cv});
      e.vstore(e.vload(streams.offset, {cv}), finalOffset, {cv});
    }
    e.vstore(e.splat(-std::numeric_limits<float>::infinity()), hiRaw, {cv});
    e.vstore(e.splat(std::numeric_limits<float>::infinity()), loRaw, {cv});
    for (Value buf :
         {sumRaw, nanRaw, pRun, oRun, seenRun, seenNext, coef, pState,
          lState})
      if (buf)
        e.vstore(e.splat(0.0f), buf, {cv});
    e.vstore(e.splat(1.0f), scale, {cv});
  });
  if (carried.in()) {
    // The record's own P and offset (recordNarrow): its X sums come in raw.
    Value one = e.cst(1.0f), zero = e.cst(0.0f);
    e.loop(w.c0i, w.cw, w.c1i, [&](Value c) {
      Value seen =
          e.fcmp(arith::CmpFPredicate::OGT, carried.seenIn(c), e.cst(0.5f));
      Value p = carried.load(c, femc::priors::kStateShift);
      Value l = carried.load(c, femc::priors::kStateLow);
      Value narrow =
          arith::AndIOp::create(e.b, seen,
                                e.fcmp(arith::CmpFPredicate::OLE, e.fsub(p, l),
                                       e.cst(femc::priors::kNarrowRange)));
      e.store(p, pState, {c});
      e.store(l, lState, {c});
      e.store(e.select(seen, p, zero), pRun, {c});
      e.store(e.select(narrow, one, zero), oRun, {c});
      e.store(e.select(seen, one, zero), seenRun, {c});
    });
  }
  e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
    e.vstore(e.vload(pRun, {cv}), streams.shift, {cv});
    e.vstore(e.vload(oRun, {cv}), streams.offset, {cv});
  });
  streams.classifyVectors();
}

Value cpu::ChunkShift::retarget(
    llvm::function_ref<std::pair<Value, Value>(Value cv)> target,
    Value seenNew) {
  Value none = arith::ConstantIntOp::create(e.b, e.b.getI1Type(), 0);
  Value one = e.splat(1.0f), zero = e.splat(0.0f), half = e.splat(0.5f);
  Value changed =
      e.loop(w.c0i, w.cwp, w.cLanes, {none}, [&](Value cv, ValueRange it) {
        auto [p, o] = target(cv);
        Value seen = seenNew ? e.vload(seenNew, {cv}) : e.vload(seenRun, {cv});
        Value pOld = e.vload(pRun, {cv});
        Value oOld =
            e.fcmp(arith::CmpFPredicate::OGT, e.vload(oRun, {cv}), half);
        Value oNew = e.fcmp(arith::CmpFPredicate::OGT, o, half);
        Value seenOld =
            e.fcmp(arith::CmpFPredicate::OGT, e.vload(seenRun, {cv}), half);
        // ScanState::xSumFromRecord's move with D = P_old - P:
        // X' - o' = e^D (X - o) + (o e^D - o'). Where both offsets are 1,
        // k = expm1(D) (the polynomial where |D| <= ln 2). o = 0 -> o' = 1
        // (k = -1) only at the first chunk after a wide record whose range
        // the launch centres: S' = e^D S - norm cancels to ~u norm there,
        // F's error u / beta, as the record's own X form has.
        Value d = e.fsub(pOld, p), ed = e.exp(d);
        Value small =
            e.fcmp(arith::CmpFPredicate::OLE, math::AbsFOp::create(e.b, d),
                   e.splat(femc::priors::kNarrowRange));
        Value em1 = e.select(small, e.expm1Narrow(d), e.expm1(d));
        Value sc = e.select(seenOld, ed, one);
        Value k = e.select(seenOld,
                           e.select(oOld, e.select(oNew, em1, ed),
                                    e.select(oNew, e.splat(-1.0f), zero)),
                           zero);
        e.vstore(sc, scale, {cv});
        e.vstore(k, coef, {cv});
        e.vstore(p, pRun, {cv});
        e.vstore(o, oRun, {cv});
        e.vstore(seen, seenRun, {cv});
        e.vstore(p, streams.shift, {cv});
        e.vstore(o, streams.offset, {cv});
        // UNE: a NaN scale (a NaN shift) counts as a move.
        Value moves = arith::AndIOp::create(
            e.b, e.mask(e.sub(w.cw, cv)),
            arith::OrIOp::create(e.b,
                                 e.fcmp(arith::CmpFPredicate::UNE, sc, one),
                                 e.fcmp(arith::CmpFPredicate::UNE, k, zero)));
        return SmallVector<Value>{
            arith::OrIOp::create(e.b, it[0],
                                 vector::ReductionOp::create(
                                     e.b, vector::CombiningKind::OR, moves))};
      })[0];
  streams.classifyVectors();
  return changed;
}

void cpu::ChunkShift::advance(Value s0, Value s1,
                              llvm::function_ref<void()> moveSums) {
  bool squash = getPriorInfo(op.getKind()).squashValues;
  // The running raw max, min, sum and NaN flag over the kept keys (the
  // pre-pass's fold; a NaN value leaves max and min), and the count of
  // kept keys.
  Value keyMask = op.getMask();
  Value kept = keyMask ? e.loop(s0, s1, w.c1i, {e.cst(0.0f)},
                                [&](Value s, ValueRange it) {
                                  return SmallVector<Value>{e.select(
                                      e.maskKeeps(keyMask, w.batch, s),
                                      e.fadd(it[0], e.cst(1.0f)), it[0])};
                                })[0]
                       : e.toFloat(e.sub(s1, s0));
  Value count = e.fadd(e.load(keptRun, {w.c0i}), kept);
  e.store(count, keptRun, {w.c0i});
  e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
    SmallVector<Value> init = {e.vload(hiRaw, {cv}), e.vload(loRaw, {cv}),
                               e.vload(sumRaw, {cv})};
    if (nanRaw)
      init.push_back(e.vload(nanRaw, {cv}));
    SmallVector<Value> red =
        e.loop(s0, s1, w.c1i, init, [&](Value s, ValueRange it) {
          ValueStreams::RawFold next = streams.foldKey(
              s, cv, {it[0], it[1], it[2], nanRaw ? it[3] : Value()},
              streams.keyKept(s));
          SmallVector<Value> out = {next.hi, next.lo, next.sum};
          if (nanRaw)
            out.push_back(next.nan);
          return out;
        });
    e.vstore(red[0], hiRaw, {cv});
    e.vstore(red[1], loRaw, {cv});
    e.vstore(red[2], sumRaw, {cv});
    if (nanRaw)
      e.vstore(red[3], nanRaw, {cv});
  });
  Value half = e.splat(0.5f);
  Value changed = retarget(
      [&](Value cv) -> std::pair<Value, Value> {
        Value hi = e.vload(hiRaw, {cv}), lo = e.vload(loRaw, {cv});
        Value any = e.fcmp(arith::CmpFPredicate::UNE, hi,
                           e.splat(-std::numeric_limits<float>::infinity()));
        Value mean = e.fdiv(e.vload(sumRaw, {cv}), e.bcast(count));
        if (squash) {
          hi = e.sigmoid(hi);
          lo = e.sigmoid(lo);
          mean = e.sigmoid(mean);
        }
        Value b = e.vload(streams.beta, {cv});
        Value bnd = e.vload(streams.bound, {cv}), negBnd = e.neg(bnd);
        Value mSeg = e.fmul(b, e.clamp(hi, negBnd, bnd));
        Value lSeg = e.fmul(b, e.clamp(lo, negBnd, bnd));
        // Merged with the record's as ScanState::begin and placeShift do:
        // the max-based shift pMax and the range [l, m] (a record's P is
        // its M wherever its span is below free, so wherever it may be
        // centred).
        Value carriedIn =
            carried.in() ? e.fcmp(arith::CmpFPredicate::OGT,
                                  e.vload(carried.seenBuffer(), {cv}), half)
                         : Value();
        Value l = lSeg, m = mSeg, pMax, seen = any;
        if (carriedIn) {
          Value ls = e.vload(lState, {cv}), ps = e.vload(pState, {cv});
          l = e.select(
              carriedIn,
              e.select(any, e.neg(e.fmaxNaN(e.neg(ls), e.neg(lSeg))), ls),
              lSeg);
          pMax = tiltShift(e, op, mSeg, l);
          pMax =
              e.select(carriedIn, e.select(any, e.fmaxNaN(ps, pMax), ps), pMax);
          m = e.select(carriedIn, e.select(any, e.fmaxNaN(ps, mSeg), ps), mSeg);
          seen = arith::OrIOp::create(e.b, carriedIn, any);
        } else {
          pMax = tiltShift(e, op, mSeg, l);
        }
        // The centred tilt (dialect/Priors.h, kCentredRange) on the mean of
        // this launch's kept keys so far, inside the merged range.
        Value c = e.centreShift(e.fmul(b, e.clamp(mean, negBnd, bnd)), l, m,
                                e.splat(femc::priors::kCentreSpan));
        Value centred = arith::AndIOp::create(
            e.b, seen,
            e.fcmp(arith::CmpFPredicate::OLE, e.fsub(m, l),
                   e.splat(femc::priors::kCentredRange)));
        Value p = e.select(centred, c, pMax);
        // The pass's NaN flag covers the whole launch, the running one
        // (no pass) the keys so far (settle() marks the rows before).
        Value nan = e.fcmp(arith::CmpFPredicate::OGT,
                           e.vload(nanRaw ? nanRaw : streams.nanLanes, {cv}),
                           half);
        p = e.select(nan, e.splat(NAN), p);
        p = e.select(seen, p, e.splat(0.0f));
        Value narrow = arith::AndIOp::create(
            e.b, seen,
            e.fcmp(arith::CmpFPredicate::OLE, e.fsub(pMax, l),
                   e.splat(femc::priors::kNarrowRange)));
        Value offset = arith::OrIOp::create(e.b, centred, narrow);
        e.vstore(e.select(seen, e.splat(1.0f), e.splat(0.0f)), seenNext, {cv});
        return {p, e.select(offset, e.splat(1.0f), e.splat(0.0f))};
      },
      seenNext);
  e.when(changed, moveSums);
}

void cpu::ChunkShift::settle(llvm::function_ref<void()> moveSums) {
  if (!ValueStreams::needsPass(op)) {
    // The channel vectors with a NaN value, their rows from the first
    // that saw a key on (a row without one outputs 0 as before).
    Value nanQ = e.splat(NAN), half = e.splat(0.5f);
    e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
      Value lanes = arith::AndIOp::create(
          e.b, e.mask(e.sub(w.cw, cv)),
          e.fcmp(arith::CmpFPredicate::OGT, e.vload(nanRaw, {cv}), half));
      Value any =
          vector::ReductionOp::create(e.b, vector::CombiningKind::OR, lanes);
      e.when(any, [&] {
        Value none = arith::ConstantIntOp::create(e.b, e.b.getI1Type(), 0);
        e.loop(w.c0i, w.T, w.c1i, {none}, [&](Value t, ValueRange it) {
          Value seen = it[0];
          if (Value keep = streams.keyKept(t))
            seen = arith::OrIOp::create(e.b, seen, keep);
          else
            seen = arith::ConstantIntOp::create(e.b, e.b.getI1Type(), 1);
          e.when(seen, [&] {
            e.vstoreMasked(nanQ, op.getOut(),
                           e.at(w.batch, t, w.head, e.add(w.chan0, cv)),
                           lanes);
          });
          return SmallVector<Value>{seen};
        });
      });
    });
  }
  if (!carried.out())
    return;
  Value changed = retarget(
      [&](Value cv) -> std::pair<Value, Value> {
        return {e.vload(finalShift, {cv}), e.vload(finalOffset, {cv})};
      },
      Value());
  e.when(changed, moveSums);
}

Value cpu::ChunkShift::move(Value cv, Value stored, Value norm) {
  Value moved = e.fmul(e.vload(scale, {cv}), stored);
  Value k = e.vload(coef, {cv});
  // coef * norm left out where coef is 0 (0 * inf is NaN); where the
  // normaliser is infinite (weights that overflowed) the X sum is that
  // infinity with coef's sign, as the reference's record form gives it
  // (w (X - o) with X <= 1), where the sum would be inf - inf = NaN.
  Value none = e.fcmp(arith::CmpFPredicate::OEQ, k, e.splat(0.0f));
  Value infinite =
      e.fcmp(arith::CmpFPredicate::OEQ, math::AbsFOp::create(e.b, norm),
             e.splat(std::numeric_limits<float>::infinity()));
  Value kNorm = e.fmul(k, norm);
  return e.select(none, moved, e.select(infinite, kNorm, e.fadd(moved, kNorm)));
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
