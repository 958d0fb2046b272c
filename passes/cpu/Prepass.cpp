//===- Prepass.cpp - the shift pre-pass and value panel of scan reads -----===//
//
// beta = softplus(beta_raw) + eps, bound = cap/beta and the shift
// M = max over the (unmasked) keys of beta*clamp(v, +-bound) for the block's
// channels. beta* and the clamp (and the ssm squash) are monotone, so M is
// taken from the max of the raw values: one pass over the kv head's values.
// A NaN value makes M NaN, as the reference's max does. The panel's tilt
// X = e^(beta clamp(v) - P) takes the shift P = M - h of placeShift, which
// keeps X and the products eps X inside float32's normal range.
//
//===----------------------------------------------------------------------===//
#include "passes/cpu/ScanPrefetch.h"
#include "passes/cpu/ScanRead.h"

using namespace mlir;
using namespace mlir::fem;
using namespace mlir::fem::cpu;

/// Rows between the pre-pass's value row and the one it prefetches.
static constexpr int64_t kPrepassAhead = 16;

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
  w.far = arith::CmpIOp::create(e.b, arith::CmpIPredicate::sge,
                                e.maxI(w.T, w.S), e.idx(kFarRows));
  return w;
}

/// Emits `prefetch(level)` where `level` is L1, else `prefetch(level)` where
/// `far` holds and `prefetch(L1)` where it does not (ScanWorkgroup::far).
static void atLevel(EmitterBuilder &e, PrefetchLevel level, Value far,
                    llvm::function_ref<void(PrefetchLevel)> prefetch) {
  if (level == PrefetchLevel::L1) {
    prefetch(PrefetchLevel::L1);
    return;
  }
  e.when(far, [&] { prefetch(level); });
  e.when(arith::XOrIOp::create(
             e.b, far, arith::ConstantIntOp::create(e.b, e.b.getI1Type(), 1)),
         [&] { prefetch(PrefetchLevel::L1); });
}

void mlir::fem::cpu::prefetchRowInto(EmitterBuilder &e, PrefetchLevel level,
                                     Value far, Value m, Value bi, Value t,
                                     Value h, Value c0, Value width,
                                     bool write) {
  int64_t perLine = 64 / (storage::elementType(m).getIntOrFloatBitWidth() / 8);
  atLevel(e, level, far, [&](PrefetchLevel at) {
    auto line = [&](Value c) {
      memref::PrefetchOp::create(e.b, m, e.at(bi, t, h, e.add(c0, c)), write,
                                 static_cast<int>(at),
                                 /*isDataCache=*/true);
    };
    e.loop(e.idx(0), width, e.idx(perLine), line);
    line(e.maxI(e.sub(width, e.idx(1)), e.idx(0)));
  });
}

void mlir::fem::cpu::prefetchScanRowPart(EmitterBuilder &e, ScanReadOp op,
                                         const ScanWorkgroup &w, Value t,
                                         ScanRowPart part,
                                         PrefetchLevel level) {
  Value s = e.minI(t, e.sub(w.S, w.c1i));
  Value tq = e.minI(t, e.sub(w.T, w.c1i));
  auto row = [&](Value m, Value bi, Value r, Value h, Value c0, Value width,
                 bool write = false) {
    prefetchRowInto(e, level, w.far, m, bi, r, h, c0, width, write);
  };
  switch (part) {
  case ScanRowPart::Keys:
    if (op.getK())
      row(op.getK(), w.batch, s, w.kvHead, w.c0i, w.dk);
    return;
  case ScanRowPart::Values:
    row(op.getV(), w.batch, s, w.kvHead, w.chan0, w.cw);
    return;
  case ScanRowPart::Delta:
    if (Value delta = op.getDelta()) { // (B, T, E): the block's channels
      Value flat0 = e.add(e.mul(w.head, w.dv), w.chan0);
      atLevel(e, level, w.far, [&](PrefetchLevel at) {
        auto line = [&](Value c) {
          memref::PrefetchOp::create(e.b, delta, {w.batch, s, e.add(flat0, c)},
                                     /*isWrite=*/false, static_cast<int>(at),
                                     /*isDataCache=*/true);
        };
        e.loop(w.c0i, w.cw, e.idx(16), line);
        // The last line of a row that does not start on one (prefetchRow).
        line(e.sub(w.cw, w.c1i));
      });
    }
    return;
  case ScanRowPart::Queries:
    if (op.getQ())
      row(op.getQ(), w.batch, tq, w.head, w.c0i, w.dk);
    return;
  case ScanRowPart::Gate:
    row(op.getGate(), w.batch, tq, w.head, w.c0i, w.dv);
    return;
  case ScanRowPart::Lam:
    row(op.getLam(), w.batch, tq, w.head, w.chan0, w.cw);
    return;
  case ScanRowPart::Out:
    row(op.getOut(), w.batch, tq, w.head, w.chan0, w.cw,
        /*write=*/true);
    return;
  }
}

void mlir::fem::cpu::prefetchScanRowSpread(EmitterBuilder &e, ScanReadOp op,
                                           const ScanWorkgroup &w, Value t,
                                           Value cv,
                                           ArrayRef<ScanRowPart> parts,
                                           PrefetchLevel level) {
  Value vectors = e.divI(w.cwp, w.cLanes);
  Value count = e.idx(static_cast<int64_t>(parts.size()));
  for (auto [j, part] : llvm::enumerate(parts)) {
    Value at =
        e.mul(e.divI(e.mul(e.idx(static_cast<int64_t>(j)), vectors), count),
              w.cLanes);
    e.when(arith::CmpIOp::create(e.b, arith::CmpIPredicate::eq, cv, at),
           [&, part = part] { prefetchScanRowPart(e, op, w, t, part, level); });
  }
}

Value ValueStreams::keyKept(Value s) {
  Value keyMask = op.getMask();
  return keyMask ? e.maskKeeps(keyMask, w.batch, s) : Value();
}

ValueStreams::RawFold ValueStreams::foldKey(Value s, Value cv,
                                            const RawFold &acc, Value keep) {
  Value v =
      e.vloadMasked(op.getV(), e.at(w.batch, s, w.kvHead, e.add(w.chan0, cv)),
                    e.mask(e.sub(w.cw, cv)));
  RawFold next{e.fmax(v, acc.hi), e.fmin(v, acc.lo), Value(), Value()};
  if (acc.sum)
    next.sum = e.fadd(acc.sum, v);
  if (acc.nan)
    next.nan = e.select(e.fcmp(arith::CmpFPredicate::UNO, v, v), e.splat(1.0f),
                        acc.nan);
  if (keep) {
    std::pair<Value *, Value> folds[] = {{&next.hi, acc.hi},
                                         {&next.lo, acc.lo},
                                         {&next.sum, acc.sum},
                                         {&next.nan, acc.nan}};
    for (auto [to, from] : folds)
      if (from)
        *to = e.select(keep, *to, from);
  }
  return next;
}

/// The tilt's shift P = M - h with h = clamp(M - L - free, 0, kTiltMax)
/// (docs/semantics.md, "Arithmetic": the shift of the scan reads), where
/// free = max(0, kTiltFloor + ln eps). X = e^(beta V~ - P) then lies in
/// [e^-free, e^kTiltMax] for every key of the range [L, M] (while
/// M - L <= free + kTiltMax, always so for eps >= 3.4e-14 since
/// M - L <= 2 cap <= 86), so the smallest product of a weight (>= eps: phi
/// and kappa are at least eps, linear's max phi(q) at least 1) and X stays
/// above e^-kTiltFloor, a normal float32, and the largest X is e^32, so the
/// X sums overflow only where the weight sums exceed 3.4e38 / e^32 = 4e24.
/// h = 0 (P = M, X in (e^-free, 1]) wherever M - L <= free: every narrow
/// channel (free >= 0.69 needs eps >= 1.2e-37) and all spans up to 66 at
/// the default eps. Computed in float32 from the float32 M and L by the
/// kernel and the reference alike (reference/Reference.cpp, tiltDrop).
/// With a carried state, L is the merged low min(L_state, L_segment), so
/// that a decode step whose key raises M moves the carried sums to the
/// merged range's shift (ScanState::begin takes max(P_state, P)).
using femc::priors::kTiltFloor;
using femc::priors::kTiltMax;

Value mlir::fem::cpu::tiltShift(EmitterBuilder &e, ScanReadOp op, Value m,
                                Value l) {
  double epsValue = op.getEpsAttr().getValueAsDouble();
  Value free = e.cstLike(
      m, static_cast<float>(std::max(0.0, kTiltFloor + std::log(epsValue))));
  Value h = e.clamp(e.fsub(e.fsub(m, l), free), e.cstLike(m, 0.0f),
                    e.cstLike(m, kTiltMax));
  return e.fsub(m, h);
}

static void placeShift(EmitterBuilder &e, ScanReadOp op, const ScanWorkgroup &w,
                       Value shift, Value lowBuf) {
  Value half = e.cst(0.5f);
  e.loop(w.c0i, w.cw, w.c1i, [&](Value c) {
    Value m = e.load(shift, {c}), l = e.load(lowBuf, {c});
    // (A split non-causal read's state holds plain sums, no range.)
    if (Value state = op.getKeyBegin() ? Value() : op.getState()) {
      Value at = e.add(w.chan0, c);
      Value seen = e.fcmp(
          arith::CmpFPredicate::OGT,
          e.load(state, {w.batch, w.head, at, e.idx(femc::priors::kStateSeen)}),
          half);
      Value lState =
          e.load(state, {w.batch, w.head, at, e.idx(femc::priors::kStateLow)});
      // min with a NaN from either side (-max(-a, -b), negation exact).
      l = e.select(seen, e.neg(e.fmaxNaN(e.neg(lState), e.neg(l))), l);
    }
    e.store(tiltShift(e, op, m, l), shift, {c});
  });
}

/// Whether the read centres its tilt (dialect/Priors.h, kCentredRange):
/// not causal (causal rows sum few keys early and are measured against
/// max|out| there; the sums of late rows lose little next to it) and
/// without a carried record (its sums are relative to its own range), which
/// a split's plain sums (`keys`) are not: its segments all centre alike.
static bool centresTilt(ScanReadOp op) {
  const femc::priors::PriorInfo &info = getPriorInfo(op.getKind());
  return ((!op.getState() && !op.getStateOut()) || op.getKeyBegin()) &&
         !femc::priors::keysOnQueryAxis(info, op.getCausal());
}

bool ValueStreams::needsPass(ScanReadOp op) {
  return !ChunkShift::applies(op) || op.getState() || op.getStateOut();
}

void ValueStreams::emit(PrefetchLevel level) {
  float capValue = static_cast<float>(op.getCapAttr().getValueAsDouble());
  bool squash = getPriorInfo(op.getKind()).squashValues;
  bool centre = centresTilt(op);
  beta = e.alloc({w.cb}, {});
  bound = e.alloc({w.cb}, {});
  shift = e.alloc({w.cb}, {});
  offset = e.alloc({w.cb}, {});
  vectorKind = e.alloc({w.cb}, {});
  invBeta = e.alloc({w.cb}, {});
  Value negInf = e.cst(-std::numeric_limits<float>::infinity());
  Value posInf = e.cst(std::numeric_limits<float>::infinity());
  // One pass over the keys reads each value row once (all channel vectors
  // of the block), the running max, min and NaN flag in scratch; the next
  // rows are prefetched (in bthd a head's rows lie a page apart every few
  // rows, where the hardware prefetchers stop).
  Value hiBuf = e.alloc({w.cb}, {});
  Value loBuf = low = e.alloc({w.cb}, {});
  anyKey = e.alloc({w.cb}, {});
  Value nanBuf = nanLanes = e.alloc({w.cb}, {});
  // The centre's sum of the kept raw values (centred reads only).
  Value sumBuf = centre ? e.alloc({w.cb}, {}) : Value();
  e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
    e.vstore(e.bcast(negInf), hiBuf, {cv});
    e.vstore(e.bcast(posInf), loBuf, {cv});
    e.vstore(e.splat(0.0f), nanBuf, {cv});
    if (sumBuf)
      e.vstore(e.splat(0.0f), sumBuf, {cv});
  });
  // A causal launch without a carried state takes no pass: ChunkShift
  // folds the keys as the rows reach them, and the buffers keep a launch
  // without keys (ChunkShift::begin replaces its shift).
  if (needsPass(op)) {
    Value ahead = e.idx(kPrepassAhead), lastS = e.sub(w.S, w.c1i);
    e.loop(w.c0i, w.S, w.c1i, [&](Value s) {
      prefetchRowInto(e, level, w.far, op.getV(), w.batch,
                      e.minI(e.add(s, ahead), lastS), w.kvHead, w.chan0, w.cw);
      Value keep = keyKept(s);
      e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
        RawFold acc{e.vload(hiBuf, {cv}), e.vload(loBuf, {cv}),
                    sumBuf ? e.vload(sumBuf, {cv}) : Value(),
                    e.vload(nanBuf, {cv})};
        RawFold next = foldKey(s, cv, acc, keep);
        e.vstore(next.hi, hiBuf, {cv});
        e.vstore(next.lo, loBuf, {cv});
        e.vstore(next.nan, nanBuf, {cv});
        if (sumBuf)
          e.vstore(next.sum, sumBuf, {cv});
      });
    });
  }
  // The number of kept keys, for the centre's mean.
  Value kept = centre ? e.keptKeys(op.getMask(), w.batch, w.S) : Value();
  e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
    Value lanesLeft = e.mask(e.sub(w.cw, cv));
    Value hi = e.vload(hiBuf, {cv}), lo = e.vload(loBuf, {cv});
    Value anyNan = e.fcmp(arith::CmpFPredicate::OGT, e.vload(nanBuf, {cv}),
                          e.splat(0.5f));
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
                  e.select(anyNan, e.splat(NAN), e.splat(0.0f)));
    Value span = e.fsub(maxV, minV);
    Value narrowLanes = e.fcmp(arith::CmpFPredicate::OLE, span,
                               e.splat(femc::priors::kNarrowRange));
    Value offsetLanes = narrowLanes;
    Value shiftV = maxV;
    if (centre) {
      // c = beta clip(mean) inside [L, min(M, L + kCentreSpan)]. A NaN M
      // (a NaN value) fails the range test and keeps M.
      Value mean = e.fdiv(e.vload(sumBuf, {cv}), e.bcast(kept));
      if (squash)
        mean = e.sigmoid(mean);
      Value c = e.centreShift(e.fmul(b, e.clamp(mean, negBnd, bnd)), minV, maxV,
                              e.splat(femc::priors::kCentreSpan));
      Value centred =
          arith::AndIOp::create(e.b,
                                e.fcmp(arith::CmpFPredicate::OLE, span,
                                       e.splat(femc::priors::kCentredRange)),
                                e.fcmp(arith::CmpFPredicate::UNE,
                                       e.vload(hiBuf, {cv}), e.bcast(negInf)));
      shiftV = e.select(centred, c, maxV);
      offsetLanes = arith::OrIOp::create(e.b, narrowLanes, centred);
    }
    e.vstore(b, beta, {cv});
    e.vstore(e.fdiv(e.splat(1.0f), b), invBeta, {cv});
    e.vstore(bnd, bound, {cv});
    e.vstore(shiftV, shift, {cv});
    e.vstore(minV, loBuf, {cv});
    e.vstore(e.select(none, e.splat(0.0f), e.splat(1.0f)), anyKey, {cv});
    e.vstore(e.select(offsetLanes, e.splat(1.0f), e.splat(0.0f)), offset, {cv});
  });
  placeShift(e, op, w, shift, loBuf);
  classifyVectors();
}

void ValueStreams::classifyVectors() {
  e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
    Value lanesLeft = e.mask(e.sub(w.cw, cv));
    auto any = [&](Value flags) {
      Value on =
          arith::AndIOp::create(e.b, lanesLeft,
                                e.fcmp(arith::CmpFPredicate::OGT,
                                       e.vload(flags, {cv}), e.splat(0.5f)));
      return vector::ReductionOp::create(e.b, vector::CombiningKind::OR, on);
    };
    e.store(e.select(any(offset), e.cst(1.0f), e.cst(0.0f)), vectorKind, {cv});
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
  // X - o (EmitterBuilder::offsetTilt: expm1 where o = 1 and |z| <= ln 2,
  // never e^z - 1 there), as the softmax panel does (ReadSoftmax.cpp). A
  // vector without offset lanes (the usual case) takes e^z alone.
  Value tilted = storage::ifValue(
      e.b,
      e.fcmp(arith::CmpFPredicate::OGT, e.load(vectorKind, {cv}), e.cst(0.5f)),
      [&] { return e.offsetTilt(z, e.exp(z), e.vload(offset, {cv})); },
      [&] { return e.exp(z); });
  if (keep) { // masked keys contribute nothing, even if v is not finite
    Value k = e.bcast(keep);
    clipped = e.select(k, clipped, e.splat(0.0f));
    tilted = e.select(k, tilted, e.splat(0.0f));
  }
  return {clipped, tilted};
}
