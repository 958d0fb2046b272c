//===- ReadAft.cpp - the aft read as a per-channel running sum
//-------------===//
//
// aft (the reference's rnn_softmax, always causal), for the block's channels
// c of both halves of [clipped | X - o]: channel j of the concatenated width
// W = 2 dv uses q/k channel j mod dk (dk | W), so value channel c reads
// q/k channel c mod dk and X channel c reads (dv + c) mod dk, the same one
// exactly when dk | dv. Where they differ (dk = 2 dv, the module's default
// sizes, or any dk dividing 2 dv but not dv) the X half keeps its own kmax,
// e^(k - kmax) and sum of kappa; the rows are emitted once per case under
// an scf.if on dv mod dk, so the common case pays nothing for it.
//
//   pre-pass: kmax[i] = max over all keys of k[i]       (quirk: future keys)
//   per row t: p = softplus(q_t) + eps (dk channels), ||p||_W^2 = (W/dk)
//              sum_i p_i^2, qhat_j = p_(j mod dk) / max(||p||_W, 1e-5)
//              sqrt(W) (the norm scaled by max p, as the gate's);
//              kappa_j = e^(k_t[j mod dk] - kmax) + eps;
//              den_j += kappa_j, num_j += kappa_j * panel_t[j];
//              mu = qhat_c num_c / max(den_c, eps),
//              Z = qhat_(dv+c) num_(dv+c) / max(den_(dv+c), eps)
//
// The q/k channels of a channel vector's lanes are consecutive where dk and
// dv are multiples of the vector width: one vector load of k (and of qhat);
// otherwise a gather, lane by lane, also emitted under an scf.if. log Z
// gains log(qhat) of the X half, log u + log(sqrt(W) / ||u||_W) per q/k
// channel: the row's scale once per row, log u in the channel loop, as
// log(R(X) u) in one log where the vector has no offset channel and the
// product is a normal float; where the X half's log qhat all lie below
// 1/16 log u is formed from q's differences instead of rounded p
// (preciseLogQ), which keeps its digits where q-hat is near 1.
//
//===----------------------------------------------------------------------===//
#include "passes/cpu/ScanMath.h"
#include "passes/cpu/ScanPrefetch.h"
#include "passes/cpu/ScanRead.h"

#include <cmath>

using namespace mlir;
using namespace mlir::fem;
using namespace mlir::fem::cpu;

/// Rows between the row a step reads and the one it prefetches. A row of
/// aft reads six per-row operands (q, k, v, gate, lam, out; 30 lines at dk =
/// dv = 64 off a line boundary). In bthd one head's lines of all operands
/// fall into 160 of Zen 2's 1024 L2 sets (1280 lines, ~42 rows): 16 rows
/// ahead (~480 lines) stay there, 32 (~960) were at the edge (with the
/// prefetches spread, ScanPrefetch.h, 8 and 16 ahead timed alike on Zen 2;
/// docs/benchmarks.md, "Scan priors").
static constexpr int64_t kRowsAhead = 16;

/// Where aft's prefetches put the rows ahead (the pre-passes' and the
/// steps'): L2 from T = kFarRows (ScanRead.h), L1 below. 16 rows of six
/// operands are ~480 lines, as many as Zen 4's L1 holds; into L1 (prefetcht0)
/// the steps stalled on them at T = 64k (two threads, interleaved A/B:
/// 0.92-0.94x the time at 64k, 1.00-1.02x at 1k; docs/benchmarks.md, "Scan
/// priors").
static constexpr PrefetchLevel kAftPrefetch = PrefetchLevel::L2;

/// Rows whose per-row passes (q's softplus and max, q's norm and log u,
/// the gate's rowScale) run one after another for all rows of the group
/// before their channel loops: the rows are independent, so the
/// out-of-order core may overlap one row's pass with the next's. On its
/// own this timed alike on Zen 2 (the reorder buffer holds little more
/// than one 16-lane vector's chain: docs/benchmarks.md, "Scan priors");
/// the q pass's gain came from its wider vectors (qLanes). At most
/// GateEpilogue::kGateRows (its rows of g+ are kept for the stores).
static constexpr int64_t kGroupRows = GateEpilogue::kGateRows;

/// The lanes of q's first pass: twice the emitter's where dk is static and
/// a multiple of them. Its chain per vector (softplus: an exp, a
/// polynomial of nine dependent FMAs) is longer than the reorder buffer
/// covers at 16 lanes; 32 lanes (four ymm per op on 8-lane
/// targets) put four independent chains side by side.
static int64_t qLanes(ScanReadOp op, int64_t lanes) {
  int64_t dk = cast<MemRefType>(op.getQ().getType()).getDimSize(3);
  return !ShapedType::isDynamic(dk) && dk % (2 * lanes) == 0 ? 2 * lanes
                                                             : lanes;
}

/// e^-|q| in q's softplus is floored here (gateSoftplus): log q-hat enters
/// F, so the floor must leave p = softplus(q) + eps exact for eps >= 1e-30
/// (e^-87 = 1.6e-38, a normal float, is below eps's last bit).
static constexpr float kQExpFloor = -87.0f;

/// The emitter's vector lanes: two of the target's 8-lane vectors where
/// dk, dv (static) and the block are multiples of 16, else the tile's vec.
/// Every step of aft is a chain of dependent ops per channel vector (the
/// softplus of q and of the gate, e^(k - kmax), the panel, the epilogue's
/// logs), longer than the out-of-order window covers across iterations: a
/// 16-lane op becomes two independent 8-lane ops side by side, so two
/// chains run at once (Zen 2, one thread, T = 4096: 32.3 -> 25.9 ms; 32
/// lanes spill and gained nothing more). Shapes off multiples of 16 keep 8
/// lanes: the q/k channels of a 16-lane vector would not be consecutive
/// and take the lane-by-lane gather.
static int64_t aftLanes(ScanReadOp op) {
  int64_t vec = op.getTiles().getVec(), wide = 2 * vec;
  if (vec != 8)
    return vec;
  int64_t dk = cast<MemRefType>(op.getQ().getType()).getDimSize(3);
  int64_t dv = cast<MemRefType>(op.getOut().getType()).getDimSize(3);
  bool fits = !ShapedType::isDynamic(dk) && !ShapedType::isDynamic(dv) &&
              dk % wide == 0 && dv % wide == 0 &&
              op.getTiles().getK() % wide == 0;
  return fits ? wide : vec;
}

/// log qhat of row t from q itself, for rows whose q are nearly equal: with
/// b = max q (its p is m = max p), each channel's relative difference
/// delta = (p - m) / m, exact to a few ulp of itself (eps cancels in p - m;
/// torch's softplus = x above 20 differs by < e^-20 m):
///   b <= 0: p - m = log1p(expm1(q - b) sigmoid(b))             (>= -1/2 arg)
///   b > 0:  p - m = (q - b) + log1p(expm1(b - q) sigmoid(-b))  (arg >= 0)
/// and log u = log1p(delta) (where u = p/m >= 1/2; below, log u of the
/// rounded u, whose relative rounding is far below its size), stored in
/// row `slot` of logQ (u is row `slot` of pBuf). The norm's part, log(sqrt(W) /
/// ||u||_W) = -1/2 log1p(S) with S = (1/dk) sum delta (2 + delta) (||u||_W^2 =
/// (W/dk) sum (1 + delta)^2), is returned; the caller keeps log(qScale) where
/// 1e-5 / m binds. u and the other channels' values stay as they are. expm1's
/// argument is capped at 80 (b - q above it only where u < 1/2 or sigmoid(-b)
/// is 0).
static Value preciseLogQ(EmitterBuilder &e, ScanReadOp op,
                         const ScanWorkgroup &w, Value t, Value dkp, Value mS,
                         Value logQ, Value pBuf, Value slot) {
  Value dk = w.dk;
  Value negInf = e.splat(-INFINITY);
  Value qMaxLanes =
      e.loop(w.c0i, dkp, w.cLanes, {negInf}, [&](Value d, ValueRange it) {
        Value lanesLeft = e.mask(e.sub(dk, d));
        Value q =
            e.vloadMasked(op.getQ(), e.at(w.batch, t, w.head, d), lanesLeft);
        return SmallVector<Value>{
            e.fmax(e.select(lanesLeft, q, negInf), it[0])};
      })[0];
  Value b = vector::ReductionOp::create(e.b, vector::CombiningKind::MAXNUMF,
                                        qMaxLanes);
  Value positive = e.fcmp(arith::CmpFPredicate::OGT, b, e.cst(0.0f));
  // sigmoid(-|b|) = sigmoid(b) where b <= 0, sigmoid(-b) where b > 0.
  Value sig = e.bcast(e.sigmoid(e.fmin(b, e.neg(b))));
  Value m = e.bcast(mS), zero = e.splat(0.0f), one = e.splat(1.0f);
  Value sum = e.loop(w.c0i, dkp, w.cLanes, {zero}, [&](Value d, ValueRange it) {
    Value lanesLeft = e.mask(e.sub(dk, d));
    Value q = e.vloadMasked(op.getQ(), e.at(w.batch, t, w.head, d), lanesLeft);
    Value dq = e.fsub(q, e.bcast(b));
    Value arg = e.select(positive, e.fmin(e.neg(dq), e.splat(80.0f)), dq);
    Value pDiff = e.fadd(e.select(positive, dq, zero),
                         e.log1p(e.fmul(e.expm1(arg), sig)));
    Value u = e.vload(pBuf, {slot, d});
    Value near = arith::AndIOp::create(
        e.b, lanesLeft, e.fcmp(arith::CmpFPredicate::OGE, u, e.splat(0.5f)));
    Value delta = e.select(near, e.fdiv(pDiff, m),
                           e.select(lanesLeft, e.fsub(u, one), zero));
    e.vstore(e.log1pOrLog(near, delta, u), logQ, {slot, d});
    return SmallVector<Value>{
        e.fma(delta, e.fadd(delta, e.splat(2.0f)), it[0])};
  })[0];
  Value meanS =
      e.fdiv(vector::ReductionOp::create(e.b, vector::CombiningKind::ADD, sum),
             e.toFloat(dk));
  return e.fmul(e.cst(-0.5f), e.log1p(meanS));
}

void mlir::fem::cpu::emitAftScanRead(ScanReadOp op) {
  EmitterBuilder e(op, op.getLayout(), aftLanes(op));
  ScanWorkgroup w = setUpScanWorkgroup(e, op);
  ValueStreams streams(e, op, w);
  GateEpilogue epilogue(e, op, w, streams);
  ScanState carried(e, op, w, streams);
  streams.emit(kAftPrefetch);
  carried.begin();
  int64_t cb = w.cb;
  Value dk = w.dk;
  // q/k channels as vectors: [0, dkp) with the lanes past dk masked off.
  Value dkp = e.roundUp(dk, w.cLanes);
  Value kmax = e.alloc({ShapedType::kDynamic}, {dkp});
  // Per row of a group (kGroupRows): p, then u = p / m, of each q/k
  // channel, and (rows whose q are nearly equal, preciseLogQ) log u; the
  // row's m, least and largest p of the X half, the scales of u and of
  // log u, whether logQ holds the row's log u (rowPrecise, 1 or 0), and the
  // gate's rowScale.
  Value pBuf = e.alloc({kGroupRows, ShapedType::kDynamic}, {dkp});
  Value logQ = e.alloc({kGroupRows, ShapedType::kDynamic}, {dkp});
  Value rowM = e.alloc({kGroupRows}, {});
  Value rowMinX = e.alloc({kGroupRows}, {});
  Value rowMaxX = e.alloc({kGroupRows}, {});
  Value rowQScale = e.alloc({kGroupRows}, {});
  Value rowLogQScale = e.alloc({kGroupRows}, {});
  Value rowPrecise = e.alloc({kGroupRows}, {});
  Value rowGate = e.alloc({kGroupRows}, {});
  // Per block channel, the sums of kappa U (numMu, numX) and kappa (den;
  // denX for the X half where it has its own q/k channels) with kappa =
  // e^(k - kmax) + eps. With a state (split), the eps part is kept apart:
  // the sums of e^(k - kmax) U, e^(k - kmax) and of U (sumMu, sumX), so that
  // a carried state can move to a larger kmax exactly. kmaxC (kmaxCX) is
  // kmax of the value (X) channel's q/k channel.
  bool split = carried.in() || carried.out();
  // Phase 1 of the parallel prefix: the sums only, no rows.
  bool stateOnly = op.getStateOnly();
  // The rows' shift per group of kGroupRows (ChunkShift); the carried X
  // sums come in raw (the record's form), the first group moves them.
  bool running = ChunkShift::applies(op);
  ChunkShift shift(e, op, w, streams, carried);
  Value numMu = e.alloc({cb}, {});
  Value numX = e.alloc({cb}, {});
  Value den = e.alloc({cb}, {});
  Value denX = e.alloc({cb}, {});
  Value sumMu = e.alloc({cb}, {});
  Value sumX = e.alloc({cb}, {});
  Value kmaxC = e.alloc({cb}, {});
  Value kmaxCX = e.alloc({cb}, {});
  for (Value buf : {numMu, numX, den, denX, sumMu, sumX, kmaxC, kmaxCX})
    e.loop(w.c0i, e.idx(cb), w.cLanes,
           [&](Value c) { e.vstore(e.splat(0.0f), buf, {c}); });
  Value negInf = e.splat(-std::numeric_limits<float>::infinity());
  // One pass over the keys, each key row read once (all its channel
  // vectors), the rows ahead prefetched as in the value pre-pass.
  e.loop(w.c0i, dkp, w.cLanes,
         [&](Value d) { e.vstore(negInf, kmax, {d}); });
  Value keyAhead = e.idx(16), lastS = e.sub(w.S, w.c1i);
  e.loop(w.c0i, w.S, w.c1i, [&](Value s) {
    prefetchRowInto(e, kAftPrefetch, w.far, op.getK(), w.batch,
                    e.minI(e.add(s, keyAhead), lastS), w.kvHead, w.c0i, dk);
    e.loop(w.c0i, dkp, w.cLanes, [&](Value d) {
      Value key = e.vloadMasked(op.getK(), e.at(w.batch, s, w.kvHead, d),
                                e.mask(e.sub(dk, d)));
      e.vstore(e.fmaxNaN(key, e.vload(kmax, {d})), kmax, {d});
    });
  });
  // The X half's q/k channel is the value channel's plus dv mod dk; ownX:
  // it differs (dk does not divide dv).
  Value shiftX = e.remI(w.dv, dk);
  Value ownX = arith::CmpIOp::create(e.b, arith::CmpIPredicate::ne, shiftX,
                                     w.c0i);
  // The carried state (dialect/Priors.h: n_mu, n_X, u_mu, u_X, d, kmax,
  // count, d_X, kmax_X), moved to this segment's kmax and shift M. The X
  // half reads d_X and kmax_X only where it has its own q/k channels.
  using namespace femc::priors;
  const int64_t sNumMu = kStatePriorPart, sNumX = sNumMu + 1,
                sSumMu = sNumMu + 2, sSumX = sNumMu + 3, sDen = sNumMu + 4,
                sKmax = sNumMu + 5, sCount = sNumMu + 6, sDenX = sNumMu + 7,
                sKmaxX = sNumMu + 8;
  Value slotDenX = e.select(ownX, e.idx(sDenX), e.idx(sDen));
  Value slotKmaxX = e.select(ownX, e.idx(sKmaxX), e.idx(sKmax));
  Value countIn = carried.in() ? carried.load(w.c0i, sCount) : e.cst(0.0f);
  // A segment without keys leaves kmax as it was: the carried slot, or the
  // empty state's 0 (segMax is -inf there).
  Value noKey = arith::CmpIOp::create(e.b, arith::CmpIPredicate::eq, w.S,
                                      w.c0i);
  e.loop(w.c0i, w.cw, w.c1i, [&](Value c) {
    Value ch = e.add(w.chan0, c);
    Value segMax = e.load(kmax, {e.remI(ch, dk)});
    Value segMaxX = e.load(kmax, {e.remI(e.add(ch, shiftX), dk)});
    if (!carried.in()) {
      e.store(e.select(noKey, e.cst(0.0f), segMax), kmaxC, {c});
      e.store(e.select(noKey, e.cst(0.0f), segMaxX), kmaxCX, {c});
      return;
    }
    Value has = e.fcmp(arith::CmpFPredicate::OGT, carried.seenIn(c),
                       e.cst(0.5f));
    // kmax moved from the carried kOld to this segment's; the factor
    // e^(kOld - kNew) of the carried sums relative to it.
    auto moveKmax = [&](Value kOld, Value seg, Value dst) {
      Value kNew = e.select(has, e.fmaxNaN(kOld, seg),
                            e.select(noKey, kOld, seg));
      e.store(kNew, dst, {c});
      return e.select(has, e.exp(e.fsub(kOld, kNew)), e.cst(0.0f));
    };
    Value rK = moveKmax(carried.load(c, sKmax), segMax, kmaxC);
    Value rKX = moveKmax(carried.load(c, slotKmaxX), segMaxX, kmaxCX);
    Value d = e.fmul(rK, carried.load(c, sDen));
    Value dX = e.fmul(rKX, carried.load(c, slotDenX));
    e.store(d, den, {c});
    e.store(dX, denX, {c});
    e.store(e.fmul(rK, carried.load(c, sNumMu)), numMu, {c});
    // n_X and u_X in the record's offset form, with their normalisers d_X
    // (at this segment's kmax, as n_X) and the key count
    // (ScanState::xSumFromRecord).
    Value nX = e.fmul(rKX, carried.load(c, sNumX));
    Value uX = carried.load(c, sSumX);
    e.store(running ? nX : carried.xSumFromRecord(c, nX, dX), numX, {c});
    e.store(carried.load(c, sSumMu), sumMu, {c});
    e.store(running ? uX : carried.xSumFromRecord(c, uX, countIn), sumX, {c});
  });
  if (running)
    shift.begin();
  // The X sums moved to the shift's new (P, o): n_X with its normaliser
  // (the sum of kappa, or of e^(k - kmax) with a state), u_X with the count
  // of keys before row t (a float).
  auto moveSums = [&](llvm::function_ref<Value(Value)> normX,
                      Value keysBefore) {
    e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
      Value norm = normX(cv);
      e.vstore(shift.move(cv, e.vload(numX, {cv}), norm), numX, {cv});
      if (split)
        e.vstore(shift.move(cv, e.vload(sumX, {cv}), e.bcast(keysBefore)), sumX,
                 {cv});
    });
  };
  // The shift advanced over rows [t0, t0 + n): n_X moves with its
  // normaliser (denX where the X half has its own q/k channels), u_X with
  // the keys before t0.
  auto advanceShift = [&](Value t0, Value n, bool two) {
    shift.advance(t0, e.add(t0, n), [&] {
      moveSums([&](Value cv) { return e.vload(two ? denX : den, {cv}); },
               e.fadd(countIn, e.toFloat(t0)));
    });
  };
  Value width = e.mul(w.dv, e.idx(2));
  Value widthF = e.toFloat(width);
  Value sqrtW = e.sqrt(widthF);
  Value repeat = e.fdiv(widthF, e.toFloat(dk));
  auto indexVec = VectorType::get({e.lanes}, e.b.getIndexType());
  Value lane = vector::StepOp::create(e.b, indexVec);
  // The X half reads q/k channels [xLow, dk): all of them where dk <= dv;
  // [dv, 2 dv) where dk = 2 dv (the only dk above dv that divides 2 dv).
  int64_t dkS = cast<MemRefType>(op.getQ().getType()).getDimSize(3);
  int64_t dvS = cast<MemRefType>(op.getOut().getType()).getDimSize(3);
  bool xAll = !ShapedType::isDynamic(dkS) && !ShapedType::isDynamic(dvS) &&
              dkS <= dvS; // known at compile time
  Value xLow =
      e.select(arith::CmpIOp::create(e.b, arith::CmpIPredicate::sgt, dk, w.dv),
               w.dv, w.c0i);
  Value cC = e.idx(w.chunk);
  Value rowsAhead = e.idx(kRowsAhead);
  Value groupC = e.idx(kGroupRows);
  // The q/k channels of a vector of block channels are consecutive (one
  // vector load instead of a gather of one lane each) where dk and the X
  // half's shift are multiples of the lanes (the block starts on one):
  // then (chan0 + cv + shift) mod dk + l is the channel of lane l.
  Value consecutive =
      w.cb % e.lanes == 0
          ? arith::AndIOp::create(
                e.b,
                arith::CmpIOp::create(e.b, arith::CmpIPredicate::eq,
                                      e.remI(dk, w.cLanes), w.c0i),
                arith::CmpIOp::create(e.b, arith::CmpIPredicate::eq,
                                      e.remI(shiftX, w.cLanes), w.c0i))
          : Value();
  // The rows; `two`: the X half has its own q/k channels (ownX); `contig`:
  // the q/k channels of each channel vector are consecutive.
  auto emitRows = [&](bool two, bool contig) {
    e.loop(w.c0i, e.ceilDiv(w.T, cC), w.c1i, [&](Value ch) {
      Value t0 = e.mul(ch, cC);
      Value n = e.minI(cC, e.sub(w.T, t0));
      // The q/k channels of the lanes of block channel vector cv: the
      // first (contig) or each lane's.
      struct QkChannels {
        Value first, each;
      };
      auto qkChannels = [&](Value cv, Value shift) {
        Value c0 = e.add(e.add(w.chan0, cv), shift);
        if (contig)
          return QkChannels{e.remI(c0, dk), Value()};
        Value channel = arith::AddIOp::create(
            e.b, lane, vector::BroadcastOp::create(e.b, indexVec, c0));
        return QkChannels{
            Value(),
            arith::RemSIOp::create(
                e.b, channel, vector::BroadcastOp::create(e.b, indexVec, dk))};
      };
      // Lanes of m at `at` with its last index the lanes' q/k channels
      // (0 off lanesLeft).
      auto qkLoad = [&](Value m, SmallVector<Value> at, const QkChannels &qk,
                        Value lanesLeft) {
        if (!contig)
          return e.gather(m, at, qk.each, lanesLeft);
        at.back() = e.add(at.back(), qk.first);
        return e.vloadMasked(m, at, lanesLeft);
      };
      // Key t at block channel vector cv: the lanes in the block, the q/k
      // channels of the lanes (qkX: of the X half), e^(k - kmax) (ekX) and
      // the panel [clipped | X - o].
      struct KeyTerms {
        Value lanesLeft;
        QkChannels qk, qkX;
        Value ek, ekX, clipped, tilted;
      };
      auto keyTerms = [&](Value t, Value cv) {
        KeyTerms k;
        k.lanesLeft = e.mask(e.sub(w.cw, cv));
        auto expKey = [&](const QkChannels &qk, Value kmaxBuf) {
          Value key = qkLoad(op.getK(), e.at(w.batch, t, w.kvHead, w.c0i), qk,
                             k.lanesLeft);
          // k - kmax <= 0 (or NaN): math.exp's value without its clamps
          // above 0 (ScanMath.h).
          return expNonPositiveExact(e, e.fsub(key, e.vload(kmaxBuf, {cv})),
                                     /*clampLow=*/true);
        };
        k.qk = qkChannels(cv, w.c0i);
        k.ek = expKey(k.qk, kmaxC);
        k.qkX = k.qk;
        k.ekX = k.ek;
        if (two) {
          k.qkX = qkChannels(cv, shiftX);
          k.ekX = expKey(k.qkX, kmaxCX);
        }
        std::tie(k.clipped, k.tilted) = streams.panel(t, cv);
        return k;
      };
      // The split form's sums (with a state): e^(k - kmax) U, e^(k - kmax)
      // and U apart; stores and returns {den, denX, numMu, numX, sumMu,
      // sumX} (denX is den unless `two`).
      auto addSplitSums = [&](Value cv, const KeyTerms &k) {
        Value d = e.fadd(e.vload(den, {cv}), k.ek);
        Value dX = two ? e.fadd(e.vload(denX, {cv}), k.ekX) : d;
        SmallVector<Value> v = {d,
                                dX,
                                e.fma(k.ek, k.clipped, e.vload(numMu, {cv})),
                                e.fma(k.ekX, k.tilted, e.vload(numX, {cv})),
                                e.fadd(e.vload(sumMu, {cv}), k.clipped),
                                e.fadd(e.vload(sumX, {cv}), k.tilted)};
        Value bufs[] = {den, denX, numMu, numX, sumMu, sumX};
        for (auto [value, buf] : llvm::zip(v, bufs))
          if (two || buf != denX)
            e.vstore(value, buf, {cv});
        return v;
      };
      if (stateOnly) {
        // The sums of the state, no row; the row kRowsAhead ahead
        // prefetched over the channel vectors (ScanPrefetch.h). The shift
        // moves per chunk, as the rows' per group.
        if (running)
          advanceShift(t0, n, two);
        e.loop(w.c0i, n, w.c1i, [&](Value r) {
          Value t = e.add(t0, r);
          Value ahead = e.add(t, rowsAhead);
          e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
            prefetchScanRowSpread(e, op, w, ahead, cv,
                                  {ScanRowPart::Keys, ScanRowPart::Values},
                                  kAftPrefetch);
            addSplitSums(cv, keyTerms(t, cv));
          });
        });
        return;
      }
      // The rows in groups of kGroupRows, each phase over all rows of the
      // group before the next (see kGroupRows): q's first pass, q's norm
      // and log q-hat, the gate's rowScale, the channel loop. The row
      // kRowsAhead ahead is prefetched one operand row at a time: q in the
      // first pass, the gate before its rowScale, the rest spread over the
      // channel vectors (ScanPrefetch.h).
      e.loop(w.c0i, n, groupC, [&](Value g) {
        Value tg = e.add(t0, g);
        Value rows = e.minI(groupC, e.sub(n, g));
        if (running)
          advanceShift(tg, rows, two);
        // qhat = p sqrt(W) / max(||p||_W, 1e-5) (||p||_W over W entries:
        // W/dk repeats of the dk channels), with the norm scaled as the
        // gate's (EmitterBuilder::gateNormDivisor): u = p / m, m = max p,
        // qhat = u sqrt(W) / max(||u||_W, 1e-5/m). Where all p are equal
        // (any dk) u is 1, ||u||_W^2 = W exactly and qhat, log qhat come out
        // exactly 1 and 0, which F = log Z / beta needs at a small beta; a
        // plain float32 sum of p^2 rounds (the ordered lane sum: 3 p^2), and
        // qhat = 1 + 2^-23 moved F by 2^-23 / beta (0.12 at beta = 1e-6).
        // No square overflows (p >= 2e19) either.
        // First pass: p of row r (slot r of pBuf), its max m and the least
        // (and where the X half reads part of the q/k channels, the
        // largest) p of the X half's channels.
        e.loop(w.c0i, rows, w.c1i, [&](Value r) {
          Value t = e.add(tg, r);
          prefetchScanRowPart(e, op, w, e.add(t, rowsAhead),
                              ScanRowPart::Queries, kAftPrefetch);
          // In x's lanes (qLanes), inserting where e does.
          EmitterBuilder x(op, op.getLayout(), qLanes(op, e.lanes));
          x.b.setInsertionPoint(e.b.getInsertionBlock(),
                                e.b.getInsertionPoint());
          auto xIndexVec = VectorType::get({x.lanes}, x.b.getIndexType());
          Value xLane = xAll ? Value() : vector::StepOp::create(x.b, xIndexVec);
          SmallVector<Value> inits = {x.splat(0.0f), x.splat(INFINITY)};
          if (!xAll)
            inits.push_back(x.splat(0.0f));
          SmallVector<Value> pPass = x.loop(
              w.c0i, dkp, x.idx(x.lanes), inits, [&](Value d, ValueRange it) {
                Value lanesLeft = x.mask(x.sub(dk, d));
                Value q = x.vloadMasked(op.getQ(), x.at(w.batch, t, w.head, d),
                                        lanesLeft);
                Value p = x.select(
                    lanesLeft,
                    x.fadd(gateSoftplus(x, q, kQExpFloor), x.bcast(w.eps)),
                    x.splat(0.0f));
                x.vstore(p, pBuf, {r, d});
                Value inX = lanesLeft;
                if (!xAll)
                  inX = arith::AndIOp::create(
                      x.b, inX,
                      arith::CmpIOp::create(
                          x.b, arith::CmpIPredicate::sge,
                          arith::AddIOp::create(
                              x.b, xLane,
                              vector::BroadcastOp::create(x.b, xIndexVec, d)),
                          vector::BroadcastOp::create(x.b, xIndexVec, xLow)));
                SmallVector<Value> next = {
                    x.fmax(p, it[0]),
                    x.fmin(x.select(inX, p, x.splat(INFINITY)), it[1])};
                if (!xAll)
                  next.push_back(
                      x.fmax(x.select(inX, p, x.splat(0.0f)), it[2]));
                return next;
              });
          // The lanes folded in a tree (ScanMath.h; no lane is NaN).
          e.store(e.gateNormDivisor(laneTree(e, pPass[0], LaneFold::Max)), rowM,
                  {r});
          e.store(laneTreeScalar(e, pPass[1], LaneFold::Min), rowMinX, {r});
          if (!xAll)
            e.store(laneTreeScalar(e, pPass[2], LaneFold::Max), rowMaxX, {r});
        });
        // Second pass: u and the lanes' sums of u^2; the row's scale of u
        // (rowQScale) and of log u (rowLogQScale). log u itself is taken
        // in the channel loop, as part of log Z where it can be (see
        // there), so this pass has no log.
        e.loop(w.c0i, rows, w.c1i, [&](Value r) {
          Value t = e.add(tg, r);
          Value mS = e.load(rowM, {r}), m = e.bcast(mS);
          Value sq = e.loop(w.c0i, dkp, w.cLanes, {e.splat(0.0f)},
                            [&](Value d, ValueRange it) {
                              Value u = e.fdiv(e.vload(pBuf, {r, d}), m);
                              e.vstore(u, pBuf, {r, d});
                              return SmallVector<Value>{e.fma(u, u, it[0])};
                            })[0];
          Value sqW = laneTree(e, e.fmul(sq, e.bcast(repeat)), LaneFold::Add);
          Value qScaleS = e.gateNormScale(sqrtW, mS, sqW);
          // log qhat_j = log u_j + log(qScale): u_j rounds to 2^-24
          // relative, so log qhat keeps ~6e-8 absolute, which F gains /
          // beta. Where the X half's log qhat all lie near 0 (q nearly equal
          // across channels, e.g. small layer inputs x W_q) that is all of
          // log qhat: its digits are lost (2e-4..7e-4 max|out| at x =
          // 1e-4). There, qhat within e^(+-1/16) (elsewhere 6e-8 is below
          // 1e-6 of the largest log qhat), the row takes log qhat from q
          // itself (preciseLogQ).
          Value logScale = e.log(qScaleS);
          auto qHatOf = [&](Value pS) {
            return e.fdiv(e.fmul(pS, qScaleS), mS);
          };
          Value nearOne = arith::AndIOp::create(
              e.b,
              e.fcmp(arith::CmpFPredicate::OGT, qHatOf(e.load(rowMinX, {r})),
                     e.cst(std::exp(-1.0f / 16.0f))),
              e.fcmp(arith::CmpFPredicate::OLT,
                     xAll ? qScaleS : qHatOf(e.load(rowMaxX, {r})),
                     e.cst(std::exp(1.0f / 16.0f))));
          Value floorBinds =
              e.fcmp(arith::CmpFPredicate::OGT, e.fdiv(e.cst(1e-5f), mS),
                     e.sqrt(vector::ReductionOp::create(
                         e.b, vector::CombiningKind::ADD, sqW)));
          Value logQScale = storage::ifValue(
              e.b, nearOne,
              [&] {
                return e.select(
                    floorBinds, logScale,
                    preciseLogQ(e, op, w, t, dkp, mS, logQ, pBuf, r));
              },
              [&] { return logScale; });
          e.store(qScaleS, rowQScale, {r});
          e.store(logQScale, rowLogQScale, {r});
          // preciseLogQ wrote the row's log u (nearOne rows).
          e.store(e.select(nearOne, e.cst(1.0f), e.cst(0.0f)), rowPrecise, {r});
        });
        e.loop(w.c0i, rows, w.c1i, [&](Value r) {
          Value t = e.add(tg, r);
          prefetchScanRowPart(e, op, w, e.add(t, rowsAhead), ScanRowPart::Gate,
                              kAftPrefetch);
          e.store(epilogue.rowScale(t), rowGate, {r});
        });
        e.loop(w.c0i, rows, w.c1i, [&](Value r) {
          Value t = e.add(tg, r);
          Value ahead = e.add(t, rowsAhead);
          Value scale = e.load(rowGate, {r});
          Value qScale = e.bcast(e.load(rowQScale, {r}));
          Value logQScale = e.bcast(e.load(rowLogQScale, {r}));
          Value precise = e.fcmp(arith::CmpFPredicate::OGT,
                                 e.load(rowPrecise, {r}), e.cst(0.5f));
          e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
            prefetchScanRowSpread(e, op, w, ahead, cv,
                                  {ScanRowPart::Keys, ScanRowPart::Values,
                                   ScanRowPart::Lam, ScanRowPart::Out},
                                  kAftPrefetch);
            KeyTerms terms = keyTerms(t, cv);
            Value lanesLeft = terms.lanesLeft;
            Value clipped = terms.clipped, tilted = terms.tilted;
            Value epsV = e.bcast(w.eps);
            Value d, dX, nm, nx;
            if (!split) {
              // Without a state: kappa = e^(k - kmax) + eps in the sums.
              Value kappa = e.fadd(terms.ek, epsV);
              Value kappaX = two ? e.fadd(terms.ekX, epsV) : kappa;
              d = e.fadd(e.vload(den, {cv}), kappa);
              dX = two ? e.fadd(e.vload(denX, {cv}), kappaX) : d;
              nm = e.fma(kappa, clipped, e.vload(numMu, {cv}));
              nx = e.fma(kappaX, tilted, e.vload(numX, {cv}));
              e.vstore(d, den, {cv});
              if (two)
                e.vstore(dX, denX, {cv});
              e.vstore(nm, numMu, {cv});
              e.vstore(nx, numX, {cv});
            } else {
              SmallVector<Value> sums = addSplitSums(cv, terms);
              Value uMu = sums[4], uX = sums[5];
              // Sums of kappa: the eps part from the sums of U and the
              // count of keys.
              Value count =
                  e.bcast(e.fadd(countIn, e.toFloat(e.add(t, w.c1i))));
              d = e.fma(epsV, count, sums[0]);
              dX = two ? e.fma(epsV, count, sums[1]) : d;
              nm = e.fma(epsV, uMu, sums[2]);
              nx = e.fma(epsV, uX, sums[3]);
            }
            Value qHat =
                e.fmul(qkLoad(pBuf, {r, w.c0i}, terms.qk, lanesLeft), qScale);
            // max(den, eps) that lets NaN through.
            Value denom = e.fmax(epsV, d);
            Value denomX = two ? e.fmax(epsV, dX) : denom;
            Value inv = e.fdiv(e.splat(1.0f), denom);
            Value invX = two ? e.fdiv(e.splat(1.0f), denomX) : inv;
            // R(1) - 1 = (den - max(den, eps)) / max(den, eps) by the
            // reciprocal already formed (0 wherever den >= eps, as every
            // sum of kappa >= eps is; NaN where den is).
            Value r1m1 = e.fmul(e.fsub(dX, denomX), invX);
            // log Z gains log q-hat = log u + log(qScale) of the X half.
            // Where no lane of the vector has offset 1 (vectorKind), the
            // row's log u is not preciseLogQ's and every lane's R(X) u is
            // a normal float, log Z + log u is one log, of R(X) u (the
            // same value to a few ulp; exactly log R(X) where u = 1): the
            // row's q pass then takes no log. Elsewhere as the two logs
            // (log1p of the offset form, the precise log u, or a product
            // that would round to 0 or overflow), log u here.
            Value zRead = e.fmul(nx, invX);
            Value uX = qkLoad(pBuf, {r, w.c0i}, terms.qkX, lanesLeft);
            Value zu = e.fmul(zRead, uX);
            Value normal = arith::AndIOp::create(
                e.b,
                e.fcmp(arith::CmpFPredicate::OGE, zu,
                       e.splat(std::numeric_limits<float>::min())),
                e.fcmp(arith::CmpFPredicate::OLE, zu,
                       e.splat(std::numeric_limits<float>::max())));
            Value off = arith::AndIOp::create(
                e.b, lanesLeft,
                arith::XOrIOp::create(
                    e.b, normal,
                    arith::ConstantOp::create(
                        e.b, e.vi1, DenseElementsAttr::get(e.vi1, true))));
            Value special = arith::OrIOp::create(
                e.b,
                arith::OrIOp::create(e.b, precise,
                                     e.fcmp(arith::CmpFPredicate::OGT,
                                            e.load(streams.vectorKind, {cv}),
                                            e.cst(0.5f))),
                vector::ReductionOp::create(e.b, vector::CombiningKind::OR,
                                            off));
            Value logU = storage::ifValue(
                e.b, special,
                [&] {
                  return e.select(
                      precise, qkLoad(logQ, {r, w.c0i}, terms.qkX, lanesLeft),
                      e.log(uX));
                },
                [&] { return e.splat(0.0f); });
            epilogue.store(t, cv, scale, e.fmul(qHat, e.fmul(nm, inv)),
                           e.select(special, zRead, zu), r1m1,
                           e.fadd(logU, logQScale));
          });
        });
      });
    });
  };
  auto emitBoth = [&](bool contig) {
    e.branch(
        ownX, [&] { emitRows(true, contig); },
        [&] { emitRows(false, contig); });
  };
  if (consecutive)
    e.branch(
        consecutive, [&] { emitBoth(true); }, [&] { emitBoth(false); });
  else
    emitBoth(false);
  if (running)
    shift.settle([&] {
      moveSums(
          [&](Value cv) {
            return e.select(ownX, e.vload(denX, {cv}), e.vload(den, {cv}));
          },
          e.fadd(countIn, e.toFloat(w.T)));
    });
  if (carried.out()) {
    Value countOut = e.fadd(countIn, e.toFloat(w.T));
    e.loop(w.c0i, w.cw, w.c1i, [&](Value c) {
      Value d = e.load(den, {c});
      // denX is den where the halves share q/k channels (not kept apart).
      Value dX = e.select(ownX, e.load(denX, {c}), d);
      carried.store(c, sNumMu, e.load(numMu, {c}));
      carried.store(c, sNumX, carried.xSumToRecord(c, dX, e.load(numX, {c})));
      carried.store(c, sSumMu, e.load(sumMu, {c}));
      carried.store(c, sSumX,
                    carried.xSumToRecord(c, countOut, e.load(sumX, {c})));
      carried.store(c, sDen, d);
      carried.store(c, sKmax, e.load(kmaxC, {c}));
      carried.store(c, sCount, countOut);
      carried.store(c, sDenX, dX);
      carried.store(c, sKmaxX, e.load(kmaxCX, {c}));
      if (stateOnly) // the segment's log decay (none for aft)
        carried.store(c, e.sub(e.dim(op.getStateOut(), 3), w.c1i),
                      e.cst(0.0f));
    });
  }
  carried.finish();
  e.freeScratch();
  op.erase();
}
