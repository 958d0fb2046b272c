//===- ReadLinear.cpp - chunked linear and gla reads -----------------------===//
//
// docs/architecture.md, "Linear-family priors". Per workgroup (channel block
// of query head h, batch b), with phi(x) = relu(x) + eps:
//
// causal (linear with `causal`, gla always), per chunk [t0, t0 + n):
//   gla: a_t = -(relu(decay_t) + eps); G = running sum of a (carried);
//        C_t = clamp(G_t, -60, 50); l_t = C_t - C_{t0-1} (relative to the
//        chunk start, <= 0: only differences are exponentiated)
//   A^T[s][t] = <phi(q_t), phi(k_s)> [* e^(l_t - m) e^(m - l_s)] for s <= t
//               (query rows on vector lanes), w_t = sum_s A^T[s][t];
//               gla's factors are per row and per key, m = l_last / 2
//               keeps both in float range, no exp per (s, t) pair
//   row t: num = [e^(l_t)] phi(q_t) S + sum_{s<=t} A^T[s][t] panel_s
//          den = [e^(l_t)] phi(q_t) . z + w_t
//          out = epilogue(num / max(den, eps))   (gla: num / (den + 1e-5))
//   S = [e^(l_last)] S + sum_s phi(k_s) [e^(l_last - l_s)] panel_s, z alike
// not causal (linear): S, z over all keys first, then every row reads them.
//
// S is dk x 2Bc (the block's [clipped | X - o] columns), z is dk. Keys
// masked out (linear) have phi(k) = 0 and a zero panel row; a row whose
// weights sum to 0 saw no key and outputs 0.
//
//===----------------------------------------------------------------------===//
#include "passes/cpu/ScanPrefetch.h"
#include "passes/cpu/ScanRead.h"

using namespace mlir;
using namespace mlir::fem;
using namespace mlir::fem::cpu;

namespace {

constexpr float kGlaOffset = 1e-5f;
constexpr float kGlaMinLogDecay = -60.0f;
constexpr float kGlaMaxLogDecay = 50.0f;
/// Output rows computed together, and key features contracted together in
/// the state update: 2 * block independent FMA chains per channel vector,
/// each state or panel vector loaded once for the block. 8 where a vector
/// has 16 lanes (AVX-512: 32 registers hold the 16 accumulators, and the
/// loads per FMA drop from 6/8 to 10/16), else 4 (16 registers). Divides
/// every legal chunk (a multiple of 2 * vec).
static int64_t contractionBlock(const EmitterBuilder &e) {
  return e.lanes >= 16 ? 8 : 4;
}

class LinearReadEmitter {
public:
  explicit LinearReadEmitter(ScanReadOp op)
      : op(op), e(op, op.getLayout(), op.getTiles().getVec()),
        w(setUpScanWorkgroup(e, op)), streams(e, op, w),
        epilogue(e, op, w, streams), carried(e, op, w, streams) {
    gla = op.getKind() == PriorKind::gla;
    causal = gla || op.getCausal();
    stateOnly = op.getStateOnly();
  }

  void emit();

private:
  /// Prefetches rows [t0, t0 + chunk) of the per-row operands (keys: k, v;
  /// queries: q, lam, gate, out), clamped to the sequence.
  void prefetchRows(Value t0, bool keys, bool queries);
  void loadKeys(Value s0, Value n);
  void loadQueries(Value t0, Value n);
  /// gla: local log decays of the chunk and their per-row and per-key
  /// factors (vectors); returns the new (G, C_last).
  SmallVector<Value> emitLogDecay(Value t0, Value n, Value g, Value gErr,
                                  Value cPrev);
  void emitScores(Value n);
  /// rowDen[t] = [e^(l_t)] phi(q_t) . z [+ w_t] for the chunk's rows, and
  /// from it rowInv (1 / denominator), rowInvDen (1 / den) and rowLogR1.
  void emitRowDens(Value n);
  void emitRows(Value t0, Value n);
  void emitStateUpdate(Value n);
  /// Normalises and stores one channel vector of row t: inv, invDen and
  /// logR1 are the row's rowInv, rowInvDen and rowLogR1 (vectors).
  void storeRow(Value t, Value cv, Value scale, Value den, Value inv,
                Value invDen, Value logR1, Value mu, Value z);
  /// The carried state into S and z (and, for gla, the log decay C that
  /// the first chunk continues from; returned, or 0 without a state).
  Value loadState();
  /// S, z and C (gla: cLast, the log decay after the last row) into
  /// state_out.
  void storeState(Value cLast, Value gLast);

  ScanReadOp op;
  EmitterBuilder e;
  ScanWorkgroup w;
  ValueStreams streams;
  GateEpilogue epilogue;
  ScanState carried;
  bool gla = false, causal = false;
  /// Phase 1 of the parallel prefix: keys and state only, no rows.
  bool stateOnly = false;
  Value cC, cCb;
  Value phiQT, phiK, scoresT, panel, state, norm, rowWeight, rowQScale,
      logDecay,
      keyWeight, rowDecay, rowDen, phiKw, rowFactor, keyFactor, rowInv,
      rowInvDen, rowLogR1;
};

void LinearReadEmitter::emit() {
  cC = e.idx(w.chunk);
  cCb = e.idx(w.cb);
  Value dk = w.dk;
  int64_t C = w.chunk, cb = w.cb;
  streams.emit();
  phiQT = e.alloc({ShapedType::kDynamic, C}, {dk});
  phiK = e.alloc({C, ShapedType::kDynamic}, {dk});
  scoresT = e.alloc({C, C}, {});
  panel = e.alloc({C, 2 * cb}, {});
  state = e.alloc({ShapedType::kDynamic, 2 * cb}, {dk});
  norm = e.alloc({ShapedType::kDynamic}, {dk});
  rowWeight = e.alloc({C}, {});
  rowQScale = e.alloc({C}, {});
  rowDen = e.alloc({C}, {});
  rowInv = e.alloc({C}, {});
  rowInvDen = e.alloc({C}, {});
  rowLogR1 = e.alloc({C}, {});
  if (gla) {
    phiKw = e.alloc({C, ShapedType::kDynamic}, {dk});
    logDecay = e.alloc({C}, {});
    keyWeight = e.alloc({C}, {});
    rowDecay = e.alloc({C}, {});
    rowFactor = e.alloc({C}, {});
    keyFactor = e.alloc({C}, {});
  }
  e.loop(w.c0i, dk, w.c1i, [&](Value d) {
    e.store(e.cst(0.0f), norm, {d});
    e.loop(w.c0i, e.idx(2 * cb), w.cLanes,
           [&](Value c) { e.vstore(e.splat(0.0f), state, {d, c}); });
  });
  carried.begin();
  Value cStart = loadState();
  Value gLast = cStart;
  // The causal rows' shift per chunk (ChunkShift): loadState left the
  // carried S_X raw (the record's form), the first chunk moves it. The
  // move commutes with gla's decay (S_X and z decay alike).
  ChunkShift shift(e, op, w, streams, carried);
  bool running = ChunkShift::applies(op);
  auto moveSums = [&] {
    e.loop(w.c0i, w.dk, w.c1i, [&](Value d) {
      Value z = e.bcast(e.load(norm, {d}));
      e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
        Value at = e.add(cCb, cv);
        e.vstore(shift.move(cv, e.vload(state, {d, at}), z), state, {d, at});
      });
    });
  };
  if (running)
    shift.begin();

  if (!causal) {
    // Every row reads every key: the state over all keys, then the rows.
    // A split read (`keys`) adds its key range [kb, ke) to the sums it was
    // given (phase 1: none; phase 3: the total, with no keys of its own).
    Value kb = op.getKeyBegin() ? op.getKeyBegin() : w.c0i;
    Value ke = op.getKeyEnd() ? e.minI(op.getKeyEnd(), w.S) : w.S;
    kb = e.minI(kb, ke);
    e.loop(w.c0i, e.ceilDiv(e.sub(ke, kb), cC), w.c1i, [&](Value kc) {
      Value s0 = e.add(kb, e.mul(kc, cC));
      Value n = e.minI(cC, e.sub(ke, s0));
      prefetchRows(e.add(s0, cC), /*keys=*/true, /*queries=*/false);
      loadKeys(s0, n);
      emitStateUpdate(n);
    });
    e.loop(w.c0i, e.ceilDiv(stateOnly ? w.c0i : w.T, cC), w.c1i,
           [&](Value qc) {
      Value t0 = e.mul(qc, cC);
      Value n = e.minI(cC, e.sub(w.T, t0));
      prefetchRows(e.add(t0, cC), /*keys=*/false, /*queries=*/true);
      loadQueries(t0, n);
      emitRowDens(n);
      emitRows(t0, n);
    });
  } else {
    SmallVector<Value> inits;
    if (gla) // G (unclamped sum), its rounding error, C_{t0-1}; a carried
      // C continues exactly: the sums only decrease, so clamp(C + a, -60,
      // 50) = clamp(G + a, ..).
      inits = {cStart, e.cst(0.0f), cStart};
    SmallVector<Value> last = e.loop(w.c0i, e.ceilDiv(w.T, cC), w.c1i, inits,
           [&](Value ch, ValueRange it) {
             Value t0 = e.mul(ch, cC);
             Value n = e.minI(cC, e.sub(w.T, t0));
             SmallVector<Value> next;
             if (gla)
               next = emitLogDecay(t0, n, it[0], it[1], it[2]);
             // With rows, emitRows spreads the next chunk's prefetches
             // over the row blocks (ScanPrefetch.h).
             if (stateOnly)
               prefetchRows(e.add(t0, cC), /*keys=*/true, /*queries=*/false);
             if (running)
               shift.advance(t0, e.add(t0, n), moveSums);
             loadKeys(t0, n);
             if (!stateOnly) {
               loadQueries(t0, n);
               emitScores(n);
               emitRowDens(n);
               emitRows(t0, n);
             }
             emitStateUpdate(n);
             return next;
           });
    if (gla) {
      cStart = last[2];
      gLast = e.fadd(last[0], last[1]);
    }
    if (running)
      shift.settle(moveSums);
  }
  storeState(cStart, gLast);
  carried.finish();
  e.freeScratch();
  op.erase();
}

Value LinearReadEmitter::loadState() {
  using namespace femc::priors;
  bool plain = carried.plainSums();
  if (!carried.in() && !(plain && op.getState()))
    return e.cst(0.0f);
  int64_t base = kStatePriorPart + 1;
  Value dk = w.dk;
  // z and C are per head; every channel's record holds them, the block
  // reads its first channel's.
  Value zBase = e.add(e.idx(base), e.add(dk, dk));
  e.loop(w.c0i, dk, w.c1i, [&](Value d) {
    e.store(carried.load(w.c0i, e.add(zBase, d)), norm, {d});
  });
  e.loop(w.c0i, w.cw, w.c1i, [&](Value c) {
    Value cz = e.add(cCb, c);
    e.loop(w.c0i, dk, w.c1i, [&](Value d) {
      Value mu = carried.load(c, e.add(e.idx(base), d));
      Value x = carried.load(c, e.add(e.add(e.idx(base), dk), d));
      e.store(mu, state, {d, c});
      // S_(X-o) at this segment's M from the record's offset form
      // (ScanRead.h, xSumFromRecord); plain sums as they are, and raw
      // where the causal rows move them per chunk (ChunkShift).
      e.store(plain || ChunkShift::applies(op)
                  ? x
                  : carried.xSumFromRecord(c, x, e.load(norm, {d})),
              state, {d, cz});
    });
  });
  return gla ? carried.load(w.c0i, kStatePriorPart) : e.cst(0.0f);
}

void LinearReadEmitter::storeState(Value cLast, Value gLast) {
  using namespace femc::priors;
  bool plain = carried.plainSums();
  if (!carried.out() && !(plain && op.getStateOut()))
    return;
  int64_t base = kStatePriorPart + 1;
  Value dk = w.dk;
  // state_only records end with the segment's total log decay (gla: the
  // unclamped running sum; it is 0 for linear).
  Value extra = stateOnly ? e.sub(e.dim(op.getStateOut(), 3), w.c1i) : Value();
  e.loop(w.c0i, w.cw, w.c1i, [&](Value c) {
    Value cz = e.add(cCb, c);
    carried.store(c, kStatePriorPart, cLast);
    if (extra)
      carried.store(c, extra, gla ? gLast : e.cst(0.0f));
    e.loop(w.c0i, dk, w.c1i, [&](Value d) {
      Value z = e.load(norm, {d});
      carried.store(c, e.add(e.idx(base), d), e.load(state, {d, c}));
      // S_X in the record's offset form (xSumToRecord); plain sums as
      // they are.
      Value x = e.load(state, {d, cz});
      carried.store(c, e.add(e.add(e.idx(base), dk), d),
                    plain ? x : carried.xSumToRecord(c, z, x));
      carried.store(c, e.add(e.add(e.idx(base), e.add(dk, dk)), d), z);
    });
  });
}

void LinearReadEmitter::prefetchRows(Value t0, bool keys, bool queries) {
  Value lastT = e.sub(w.T, w.c1i), lastS = e.sub(w.S, w.c1i);
  e.loop(w.c0i, cC, w.c1i, [&](Value r) {
    Value t = e.add(t0, r);
    if (keys) {
      Value s = e.minI(t, lastS);
      e.prefetchRow(op.getK(), w.batch, s, w.kvHead, w.c0i, w.dk);
      e.prefetchRow(op.getV(), w.batch, s, w.kvHead, w.chan0, w.cw);
    }
    if (queries) {
      Value tq = e.minI(t, lastT);
      e.prefetchRow(op.getQ(), w.batch, tq, w.head, w.c0i, w.dk);
      e.prefetchRow(op.getGate(), w.batch, tq, w.head, w.c0i, w.dv);
      e.prefetchRow(op.getLam(), w.batch, tq, w.head, w.chan0, w.cw);
      e.prefetchRow(op.getOut(), w.batch, tq, w.head, w.chan0, w.cw,
                    /*write=*/true);
    }
  });
}

void LinearReadEmitter::loadKeys(Value s0, Value n) {
  e.loop(w.c0i, n, w.c1i, [&](Value r) {
    Value s = e.add(s0, r);
    Value keep = streams.keyKept(s);
    // gla: phi(k_s) e^(l_last - l_s) for the state update, in the same pass.
    Value kw = gla ? e.load(keyWeight, {r}) : Value();
    e.loop(w.c0i, w.dk, w.c1i, [&](Value d) {
      Value phi = e.featureMap(e.load(op.getK(), e.at(w.batch, s, w.kvHead, d)),
                               w.eps);
      if (keep)
        phi = e.select(keep, phi, e.cst(0.0f));
      e.store(phi, phiK, {r, d});
      if (gla)
        e.store(e.fmul(phi, kw), phiKw, {r, d});
    });
    e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
      auto [clipped, tilted] = streams.panel(s, cv, keep);
      e.vstore(clipped, panel, {r, cv});
      e.vstore(tilted, panel, {r, e.add(cCb, cv)});
    });
  });
}

/// Transposes the lanes x lanes matrix whose rows are `v` (lanes a power of
/// two), in place: log2(lanes) rounds of two-source shuffles. The round of
/// bit h swaps bit h of the row and of the lane index, so element (i, j)
/// with bit h set in exactly one of them moves to (i ^ h, j ^ h); all
/// rounds together swap every bit: (i, j) -> (j, i).
static void transposeSquare(EmitterBuilder &e, SmallVectorImpl<Value> &v) {
  int64_t n = static_cast<int64_t>(v.size());
  for (int64_t h = n / 2; h >= 1; h /= 2) {
    SmallVector<int64_t> loMask(n), hiMask(n);
    for (int64_t j = 0; j < n; ++j) {
      // Operand lanes: [0, n) the row without bit h, [n, 2n) the row with.
      loMask[j] = (j & h) ? n + (j ^ h) : j;
      hiMask[j] = (j & h) ? n + j : (j ^ h);
    }
    for (int64_t i = 0; i < n; ++i) {
      if (i & h)
        continue;
      Value lo = v[i], hi = v[i + h];
      v[i] = vector::ShuffleOp::create(e.b, lo, hi, loMask);
      v[i + h] = vector::ShuffleOp::create(e.b, lo, hi, hiMask);
    }
  }
}

void LinearReadEmitter::loadQueries(Value t0, Value n) {
  // Rows past the end repeat the last row; their results are never stored.
  Value last = e.sub(w.T, w.c1i);
  // phiQT[d][r] = phi(q[t0 + r][d]): lanes x lanes tiles (the chunk is a
  // multiple of lanes) of feature vectors, transposed in registers, then
  // the features past the last whole vector one by one.
  int64_t lanes = e.lanes;
  Value dkMain = e.sub(w.dk, e.remI(w.dk, w.cLanes));
  Value epsV = e.bcast(w.eps);
  e.loop(w.c0i, cC, w.cLanes, [&](Value r0) {
    SmallVector<Value> times;
    for (int64_t i = 0; i < lanes; ++i)
      times.push_back(e.minI(e.add(t0, e.add(r0, e.idx(i))), last));
    e.loop(w.c0i, dkMain, w.cLanes, [&](Value d0) {
      SmallVector<Value> rows;
      for (int64_t i = 0; i < lanes; ++i)
        rows.push_back(e.featureMap(
            e.vload(op.getQ(), e.at(w.batch, times[i], w.head, d0)), epsV));
      transposeSquare(e, rows);
      for (int64_t j = 0; j < lanes; ++j)
        e.vstore(rows[j], phiQT, {e.add(d0, e.idx(j)), r0});
    });
  });
  e.loop(w.c0i, cC, w.c1i, [&](Value r) {
    Value t = e.minI(e.add(t0, r), last);
    e.loop(dkMain, w.dk, w.c1i, [&](Value d) {
      e.store(e.featureMap(e.load(op.getQ(), e.at(w.batch, t, w.head, d)),
                           w.eps),
              phiQT, {d, r});
    });
  });
  // A row whose largest phi(q) is below 1 (q < 0 in every channel: phi(q) =
  // eps) is scaled by the power of two a that brings it to [1, 2), and its
  // clamp eps (gla: its 1e-5) by the same a (emitRowDens): R(U) = sum w U /
  // max(sum w, eps) is unchanged, but w * X no longer underflows float32.
  // Exact, so rows at 1 or above (a = 1) keep their bits; the state update
  // reads phi(k) only, so state_out keeps its meaning.
  auto vi32 = VectorType::get({lanes}, e.b.getI32Type());
  auto i32s = [&](int64_t v) { return storage::intConstant(e.b, vi32, v); };
  e.loop(w.c0i, cC, w.cLanes, [&](Value r0) {
    Value top = e.loop(w.c0i, w.dk, w.c1i, {e.splat(0.0f)},
                       [&](Value d, ValueRange it) {
                         return SmallVector<Value>{
                             e.fmax(e.vload(phiQT, {d, r0}), it[0])};
                       })[0];
    // 2^(127 - E) for top = 2^(E - 127) * 1.f (biased exponent E >= 1:
    // phi >= eps >= 1e-30 is normal).
    Value expBits = arith::AndIOp::create(
        e.b, arith::BitcastOp::create(e.b, vi32, top), i32s(0x7f800000));
    Value pow2 = arith::BitcastOp::create(
        e.b, top.getType(), arith::SubIOp::create(e.b, i32s(0x7f000000),
                                                  expBits));
    Value a = e.select(e.fcmp(arith::CmpFPredicate::OLT, top, e.splat(1.0f)),
                       pow2, e.splat(1.0f));
    e.vstore(a, rowQScale, {r0});
    e.loop(w.c0i, w.dk, w.c1i, [&](Value d) {
      e.vstore(e.fmul(e.vload(phiQT, {d, r0}), a), phiQT, {d, r0});
    });
  });
}

SmallVector<Value> LinearReadEmitter::emitLogDecay(Value t0, Value n, Value g,
                                                   Value gErr, Value cPrev) {
  Value decay = op.getDecay();
  auto decayAt = [&](Value t) -> SmallVector<Value, 3> {
    if (op.getLayout() == Layout::bthd)
      return {w.batch, t, w.head};
    return {w.batch, w.head, t};
  };
  // The running sum G is compensated (Knuth's TwoSum: G + err holds it to
  // a float32 rounding whatever the row count): a plain float32 sum
  // drifts by up to half an ulp(|G|) per row, so C at the -60 clamp was
  // off by ~1e-3 after 600 rows of a = -0.1 and every key before the clamp
  // weighed e^(1e-3) too much against the keys after it (1.06e-4 max|out|,
  // spec_fuzz seed 5201, eps 0.1).
  SmallVector<Value> out =
      e.loop(w.c0i, n, w.c1i, {g, gErr, cPrev}, [&](Value r, ValueRange it) {
        Value raw = e.load(decay, decayAt(e.add(t0, r)));
        Value a = e.neg(e.featureMap(raw, w.eps));
        Value sum = e.fadd(it[0], a);
        Value bv = e.fsub(sum, it[0]);
        Value err = e.fadd(e.fsub(it[0], e.fsub(sum, bv)), e.fsub(a, bv));
        // an infinite a (decay = inf) gives err = NaN: C is then clamp(-inf)
        err = e.select(e.fcmp(arith::CmpFPredicate::ORD, err, err), err,
                       e.cst(0.0f));
        Value sumErr = e.fadd(it[1], err);
        // (quirk) the running sum is clamped, so once C reaches -60 the
        // decay stops.
        Value c = e.clamp(e.fadd(sum, sumErr), e.cst(kGlaMinLogDecay),
                          e.cst(kGlaMaxLogDecay));
        e.store(e.fsub(c, cPrev), logDecay, {r});
        return SmallVector<Value>{sum, sumErr, c};
      });
  Value lLast = e.load(logDecay, {e.sub(n, w.c1i)});
  // Rows past the end take the last row's decay (finite, never stored).
  e.loop(n, cC, w.c1i, [&](Value r) { e.store(lLast, logDecay, {r}); });
  // The scores' e^(l_t - l_s) = e^(l_t - m) e^(m - l_s). l lies in
  // [l_last, 0] and l_last >= -110 (C from a carried 50 down to -60), so
  // with m = l_last / 2 both factors are normal floats (|exponent| <= 55)
  // and their product is the pair's factor to a few ulp. A NaN decay
  // (l_last NaN) takes m = -30, which keeps the rows before it finite.
  Value half = e.fmul(lLast, e.cst(0.5f));
  Value mid = e.select(e.fcmp(arith::CmpFPredicate::UNO, lLast, lLast),
                       e.cst(-30.0f), half);
  Value lastV = e.bcast(lLast), midV = e.bcast(mid);
  e.loop(w.c0i, cC, w.cLanes, [&](Value rv) {
    Value l = e.vload(logDecay, {rv});
    e.vstore(e.exp(l), rowDecay, {rv});
    e.vstore(e.exp(e.fsub(lastV, l)), keyWeight, {rv});
    e.vstore(e.exp(e.fsub(l, midV)), rowFactor, {rv});
    e.vstore(e.exp(e.fsub(midV, l)), keyFactor, {rv});
  });
  return out;
}

void LinearReadEmitter::emitScores(Value n) {
  // A^T[s][t] with query rows t on vector lanes; row t reads s <= t only.
  // kS keys at a time: kS independent FMA chains over the features share
  // every query vector. Keys in [n, roundUp(n, kS)) (below the chunk size, a
  // multiple of kS) only reach padded rows t >= n, which are never stored.
  auto vi32 = VectorType::get({e.lanes}, e.b.getI32Type());
  auto i32 = [&](Value index) {
    return arith::IndexCastOp::create(e.b, e.b.getI32Type(), index);
  };
  int64_t kS = w.chunk % 8 == 0 ? 8 : 4;
  Value cKS = e.idx(kS);
  Value lane = arith::IndexCastOp::create(
      e.b, vi32,
      vector::StepOp::create(e.b,
                             VectorType::get({e.lanes}, e.b.getIndexType())));
  e.loop(w.c0i, e.roundUp(n, w.cLanes), w.cLanes, [&](Value tv) {
    Value rowIdx = arith::AddIOp::create(
        e.b, lane, vector::BroadcastOp::create(e.b, vi32, i32(tv)));
    Value rf = gla ? e.vload(rowFactor, {tv}) : Value();
    Value sEnd = e.minI(n, e.add(tv, w.cLanes));
    Value sum = e.loop(
        w.c0i, e.roundUp(sEnd, cKS), cKS, {e.splat(0.0f)},
        [&](Value s0, ValueRange it) {
          SmallVector<Value> keys;
          for (int64_t j = 0; j < kS; ++j)
            keys.push_back(e.add(s0, e.idx(j)));
          SmallVector<Value> dots = e.loop(
              w.c0i, w.dk, w.c1i, SmallVector<Value>(kS, e.splat(0.0f)),
              [&](Value d, ValueRange acc) {
                Value qv = e.vload(phiQT, {d, tv});
                SmallVector<Value> next;
                for (int64_t j = 0; j < kS; ++j)
                  next.push_back(
                      e.fma(e.bcast(e.load(phiK, {keys[j], d})), qv, acc[j]));
                return next;
              });
          Value total = it[0];
          for (int64_t j = 0; j < kS; ++j) {
            Value s = keys[j];
            Value dot = dots[j];
            Value visible = arith::CmpIOp::create(
                e.b, arith::CmpIPredicate::sge, rowIdx,
                vector::BroadcastOp::create(e.b, vi32, i32(s)));
            // gla: the factor is at most ~1 on visible lanes; hidden lanes
            // (possibly inf) are dropped by the select.
            if (gla)
              dot = e.fmul(dot, e.fmul(rf, e.bcast(e.load(keyFactor, {s}))));
            Value weight = e.select(visible, dot, e.splat(0.0f));
            e.vstore(weight, scoresT, {s, tv});
            total = e.fadd(total, weight);
          }
          return SmallVector<Value>{total};
        })[0];
    e.vstore(sum, rowWeight, {tv});
  });
}

void LinearReadEmitter::emitRowDens(Value n) {
  // Query rows on lanes; rows past n (padded) are computed, never stored.
  Value epsV = e.bcast(w.eps);
  e.loop(w.c0i, e.roundUp(n, w.cLanes), w.cLanes, [&](Value tv) {
    SmallVector<Value> acc = e.loop(
        w.c0i, w.dk, w.c1i, {e.splat(0.0f)}, [&](Value d, ValueRange it) {
          return SmallVector<Value>{e.fma(e.bcast(e.load(norm, {d})),
                                          e.vload(phiQT, {d, tv}), it[0])};
        });
    Value den = acc[0];
    if (gla)
      den = e.fmul(den, e.vload(rowDecay, {tv}));
    if (causal)
      den = e.fadd(den, e.vload(rowWeight, {tv}));
    e.vstore(den, rowDen, {tv});
    // The row's normalisers, once per row for all its channel vectors.
    // Z = R(1) * (sum w (X - o) / sum w + o): the X stream is averaged over
    // den and log R(1) goes to the epilogue's log scale, so log Z keeps its
    // precision where R(1) is far from 1 (den < eps for linear, den ~ 1e-5
    // for gla); log1p of R(1) - 1 near 1, where log(den / denom) would
    // round. R(1) - 1 = -1e-5 / denom for gla (den - denom would keep only
    // the rounding of den + 1e-5 once den >> 1e-5), (den - denom) / denom
    // for linear (0, or exact by Sterbenz where den >= eps / 2).
    // eps and 1e-5 scaled as the row's phi(q) (loadQueries).
    Value a = e.vload(rowQScale, {tv});
    Value glaOffset = gla ? e.fmul(e.splat(kGlaOffset), a) : Value();
    Value denom = gla ? e.fadd(den, glaOffset)
                      // max(den, eps) that lets NaN through; a row with no
                      // key has den = 0.
                      : e.fmax(e.fmul(epsV, a), den);
    Value one = e.splat(1.0f);
    Value inv = e.fdiv(one, denom);
    Value r1m1 = gla ? e.fdiv(e.neg(glaOffset), denom)
                     : e.fdiv(e.fsub(den, denom), denom);
    e.vstore(inv, rowInv, {tv});
    e.vstore(e.fdiv(one, den), rowInvDen, {tv});
    e.vstore(e.log1pOrLog(e.fcmp(arith::CmpFPredicate::OGT, r1m1,
                                 e.splat(-0.5f)),
                          r1m1, e.fdiv(den, denom)),
             rowLogR1, {tv});
  });
}

void LinearReadEmitter::storeRow(Value t, Value cv, Value scale, Value den,
                                 Value inv, Value invDen, Value logR1,
                                 Value mu, Value z) {
  // A linear row with no key (den = 0) outputs 0.
  Value has = gla ? Value()
                  : e.fcmp(arith::CmpFPredicate::UNE, den, e.cst(0.0f));
  epilogue.store(t, cv, scale, e.fmul(mu, inv), e.fmul(z, invDen),
                 e.splat(0.0f), logR1, has);
}

void LinearReadEmitter::emitRows(Value t0, Value n) {
  // kRowBlock rows at a time (contractionBlock): 2 * kRowBlock independent
  // accumulators per channel vector (the FMA chains would otherwise wait on
  // each other), and every state or panel vector loaded once for the block.
  // Rows past n compute garbage from the padded queries and are not stored;
  // every buffer they read is sized by the chunk (a multiple of the block).
  const int64_t kRowBlock = contractionBlock(e);
  Value cRB = e.idx(kRowBlock);
  Value last = e.sub(w.T, w.c1i);
  e.loop(w.c0i, e.roundUp(n, cRB), cRB, [&](Value r0) {
    SmallVector<Value> rows, times, scales, dens, decays, valid, invs,
        invDens, logR1s;
    for (int64_t i = 0; i < kRowBlock; ++i) {
      Value r = e.add(r0, e.idx(i));
      rows.push_back(r);
      times.push_back(e.add(t0, r));
      valid.push_back(arith::CmpIOp::create(e.b, arith::CmpIPredicate::slt,
                                            r, n));
      scales.push_back(epilogue.rowScale(e.minI(times.back(), last)));
      decays.push_back(gla ? e.load(rowDecay, {r}) : Value());
      dens.push_back(e.load(rowDen, {r}));
      invs.push_back(e.bcast(e.load(rowInv, {r})));
      invDens.push_back(e.bcast(e.load(rowInvDen, {r})));
      logR1s.push_back(e.bcast(e.load(rowLogR1, {r})));
    }
    e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
      Value cz = e.add(cCb, cv);
      if (causal) {
        // The block's rows one chunk ahead, one operand row at a time
        // spread over the channel vectors (ScanPrefetch.h) rather than in
        // one burst before them, into L2 from T = kFarRows: a chunk of six
        // operands' rows
        // (~1900 lines) is four times Zen 4's L1 (into L1 they evicted each
        // other; gla and linear at T = 64k 0.81-0.82x the time, 1k 0.98x;
        // docs/benchmarks.md, "Scan priors").
        const ScanRowPart parts[] = {ScanRowPart::Keys,    ScanRowPart::Values,
                                     ScanRowPart::Queries, ScanRowPart::Gate,
                                     ScanRowPart::Lam,     ScanRowPart::Out};
        int64_t total = kRowBlock * std::size(parts);
        Value vectors = e.divI(w.cwp, w.cLanes);
        for (int64_t k = 0; k < total; ++k) {
          Value at =
              e.mul(e.divI(e.mul(e.idx(k), vectors), e.idx(total)), w.cLanes);
          Value t = e.add(times[k % kRowBlock], cC);
          ScanRowPart part = parts[k / kRowBlock];
          e.when(arith::CmpIOp::create(e.b, arith::CmpIPredicate::eq, cv, at),
                 [&] {
                   prefetchScanRowPart(e, op, w, t, part, PrefetchLevel::L2);
                 });
        }
      }
      // acc[2i] = mu part of row i, acc[2i + 1] = X part.
      SmallVector<Value> acc = e.loop(
          w.c0i, w.dk, w.c1i,
          SmallVector<Value>(2 * kRowBlock, e.splat(0.0f)),
          [&](Value d, ValueRange it) {
            Value sMu = e.vload(state, {d, cv});
            Value sX = e.vload(state, {d, cz});
            SmallVector<Value> next;
            for (int64_t i = 0; i < kRowBlock; ++i) {
              Value q = e.bcast(e.load(phiQT, {d, rows[i]}));
              next.push_back(e.fma(q, sMu, it[2 * i]));
              next.push_back(e.fma(q, sX, it[2 * i + 1]));
            }
            return next;
          });
      if (gla)
        for (int64_t i = 0; i < 2 * kRowBlock; ++i)
          acc[i] = e.fmul(acc[i], e.bcast(decays[i / 2]));
      if (causal) {
        // Keys s <= last row of the block (and < n); A^T[s][r] is 0 for
        // s > r, so each row still reads only its visible keys.
        Value sEnd = e.minI(n, e.add(r0, cRB));
        acc = e.loop(w.c0i, sEnd, w.c1i, acc, [&](Value s, ValueRange it) {
          Value pMu = e.vload(panel, {s, cv});
          Value pX = e.vload(panel, {s, cz});
          SmallVector<Value> next;
          for (int64_t i = 0; i < kRowBlock; ++i) {
            Value a = e.bcast(e.load(scoresT, {s, rows[i]}));
            next.push_back(e.fma(a, pMu, it[2 * i]));
            next.push_back(e.fma(a, pX, it[2 * i + 1]));
          }
          return next;
        });
      }
      for (int64_t i = 0; i < kRowBlock; ++i)
        e.when(valid[i], [&] {
          storeRow(times[i], cv, scales[i], dens[i], invs[i], invDens[i],
                   logR1s[i], acc[2 * i], acc[2 * i + 1]);
        });
    });
  });
}

void LinearReadEmitter::emitStateUpdate(Value n) {
  Value decay = gla ? e.load(rowDecay, {e.sub(n, w.c1i)}) : Value();
  // gla: phi(k_s) e^(l_last - l_s) (loadKeys).
  Value keys = gla ? phiKw : phiK;
  // Features [d0, d0 + nd) together: 2 * nd independent FMA chains per
  // channel vector, each panel vector loaded once for all of them.
  auto block = [&](Value d0, int64_t nd) {
    SmallVector<Value> feats;
    for (int64_t i = 0; i < nd; ++i)
      feats.push_back(i == 0 ? d0 : e.add(d0, e.idx(i)));
    SmallVector<Value> zSum = e.loop(
        w.c0i, n, w.c1i, SmallVector<Value>(nd, e.cst(0.0f)),
        [&](Value s, ValueRange it) {
          SmallVector<Value> next;
          for (int64_t i = 0; i < nd; ++i)
            next.push_back(e.fadd(it[i], e.load(keys, {s, feats[i]})));
          return next;
        });
    for (int64_t i = 0; i < nd; ++i) {
      Value old = e.load(norm, {feats[i]});
      e.store(gla ? e.fadd(e.fmul(old, decay), zSum[i]) : e.fadd(old, zSum[i]),
              norm, {feats[i]});
    }
    e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
      Value cz = e.add(cCb, cv);
      SmallVector<Value> acc = e.loop(
          w.c0i, n, w.c1i, SmallVector<Value>(2 * nd, e.splat(0.0f)),
          [&](Value s, ValueRange it) {
            Value pMu = e.vload(panel, {s, cv});
            Value pX = e.vload(panel, {s, cz});
            SmallVector<Value> next;
            for (int64_t i = 0; i < nd; ++i) {
              Value k = e.bcast(e.load(keys, {s, feats[i]}));
              next.push_back(e.fma(k, pMu, it[2 * i]));
              next.push_back(e.fma(k, pX, it[2 * i + 1]));
            }
            return next;
          });
      for (int64_t i = 0; i < nd; ++i) {
        Value oldMu = e.vload(state, {feats[i], cv});
        Value oldZ = e.vload(state, {feats[i], cz});
        if (gla) {
          e.vstore(e.fma(oldMu, e.bcast(decay), acc[2 * i]), state,
                   {feats[i], cv});
          e.vstore(e.fma(oldZ, e.bcast(decay), acc[2 * i + 1]), state,
                   {feats[i], cz});
        } else {
          e.vstore(e.fadd(oldMu, acc[2 * i]), state, {feats[i], cv});
          e.vstore(e.fadd(oldZ, acc[2 * i + 1]), state, {feats[i], cz});
        }
      }
    });
  };
  const int64_t kFeatureBlock = contractionBlock(e);
  Value cFB = e.idx(kFeatureBlock);
  Value dkMain = e.sub(w.dk, e.remI(w.dk, cFB));
  e.loop(w.c0i, dkMain, cFB, [&](Value d0) { block(d0, kFeatureBlock); });
  e.loop(dkMain, w.dk, w.c1i, [&](Value d) { block(d, 1); });
}

} // namespace

void mlir::fem::cpu::emitChunkedLinearRead(ScanReadOp op) {
  LinearReadEmitter(op).emit();
}
