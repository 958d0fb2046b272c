//===- ReadSsm.cpp - the ssm read as a per-channel selective scan
//----------===//
//
// ssm (always causal), per flat channel e = h dv + c of the block and state
// n < N, three scans in one pass over time sharing the decay e^(delta A):
//
//   x_U[n] = e^(delta_t[e] A[e,n]) x_U[n] + delta_t[e] Bs_t[n] U_t
//   y_U = sum_n Cs_t[n] x_U[n] + D[e] U_t
//
// for U = clipped (sigmoid-squashed v), U = X - o and U = 1; the read is
// y_U / max(y_1, eps). Channels sit on vector lanes; the state is N x Bc per
// stream, A is transposed once per workgroup.
//
// A row runs in phases, each a loop over the block's channels whose
// iterations are independent: the panel [clipped | X - o] and delta into
// row buffers; the decays e^(delta A) for every n; the three scans and
// y_U / max(y_1, eps); the gated output (the epilogue). Each phase's
// iterations are short, so the core overlaps their latency chains (exp,
// log, divisions); in one loop per channel vector the chains of the panel,
// the scan and the epilogue ran back to back, each waiting for the last.
// The decays and the scans take kWideVectors vectors of channels per
// operation (wide vectors: the back end interleaves their parts, four
// independent polynomial chains at once).
//
//===----------------------------------------------------------------------===//
#include "passes/cpu/ScanPrefetch.h"
#include "passes/cpu/ScanRead.h"

using namespace mlir;
using namespace mlir::fem;
using namespace mlir::fem::cpu;

/// Vectors of channels per operation in the decay and scan phases (a wide
/// vector: vector<kWideVectors * lanes x f32>).
static constexpr int64_t kWideVectors = 4;

/// Rows between the row a step reads and the one it prefetches: a chunk
/// (64) ahead, five operand rows of 25 lines each overflowed the L2 sets one
/// head's bthd rows map to (ReadAft.cpp, kRowsAhead).
static constexpr int64_t kRowsAhead = 16;

void mlir::fem::cpu::emitSsmScanRead(ScanReadOp op) {
  EmitterBuilder e(op, op.getLayout(), op.getTiles().getVec());
  ScanWorkgroup w = setUpScanWorkgroup(e, op);
  ValueStreams streams(e, op, w);
  GateEpilogue epilogue(e, op, w, streams);
  ScanState carried(e, op, w, streams);
  streams.emit();
  carried.begin();
  int64_t cb = w.cb;
  // The wide builder: as many vectors as divide the block (cb is a multiple
  // of lanes), its ops placed where `e` places its own (wide()).
  int64_t vectors = kWideVectors;
  while ((cb / e.lanes) % vectors != 0)
    --vectors;
  EmitterBuilder wideBuilder(op, op.getLayout(), vectors * e.lanes);
  auto wide = [&]() -> EmitterBuilder & {
    wideBuilder.b.setInsertionPoint(e.b.getInsertionBlock(),
                                    e.b.getInsertionPoint());
    return wideBuilder;
  };
  Value cWide = e.idx(wideBuilder.lanes);
  Value cwpWide = e.roundUp(w.cw, cWide);
  Value N = e.dim(op.getA(), 1);
  Value cCb = e.idx(cb);
  Value flat0 = e.add(e.mul(w.head, w.dv), w.chan0);
  // A^T of the block (channels past the block repeat the last channel).
  Value aT = e.alloc({ShapedType::kDynamic, cb}, {N});
  Value lastChannel = e.sub(w.dv, w.c1i);
  e.loop(w.c0i, N, w.c1i, [&](Value n) {
    e.loop(w.c0i, cCb, w.c1i, [&](Value c) {
      Value ch = e.minI(e.add(w.chan0, c), lastChannel);
      e.store(e.load(op.getA(), {e.add(e.mul(w.head, w.dv), ch), n}), aT,
              {n, c});
    });
  });
  // States of the three scans: (stream, n, channel).
  Value states = e.alloc({3, ShapedType::kDynamic, cb}, {N});
  e.loop(w.c0i, N, w.c1i, [&](Value n) {
    e.loop(w.c0i, cCb, w.cLanes, [&](Value c) {
      for (int64_t i = 0; i < 3; ++i)
        e.vstore(e.splat(0.0f), states, {e.idx(i), n, c});
    });
  });
  // Row buffers (one row's block): delta, the panel, the decays per n and
  // the reads y_mu / max(y_1, eps), y_X / max(y_1, eps) (or y_X / y_1 where
  // y_1 < eps) and log R(1) (0 unless y_1 < eps).
  Value stepRow = e.alloc({cb}, {});
  Value uRow = e.alloc({cb}, {});
  Value xRow = e.alloc({cb}, {});
  Value decayRow = e.alloc({ShapedType::kDynamic, cb}, {N});
  Value readRow = e.alloc({3, cb}, {});
  Value s0 = e.idx(0), s1 = e.idx(1), s2 = e.idx(2);
  // The carried state (dialect/Priors.h: x_mu, x_X, x_1, N each), the X
  // stream moved from the record's offset form to this segment's shift and
  // offset (ScanState::xSumFromRecord; the scan is linear in U).
  using namespace femc::priors;
  auto slot = [&](int64_t stream, Value n) {
    return e.add(e.idx(kStatePriorPart), e.add(e.mul(e.idx(stream), N), n));
  };
  // The rows' shift per chunk (ChunkShift): the carried x_X comes in raw
  // (the record's form), the first chunk moves it.
  bool running = ChunkShift::applies(op);
  ChunkShift shift(e, op, w, streams, carried);
  if (carried.in())
    e.loop(w.c0i, w.cw, w.c1i, [&](Value c) {
      e.loop(w.c0i, N, w.c1i, [&](Value n) {
        Value ones = carried.load(c, slot(2, n));
        Value xX = carried.load(c, slot(1, n));
        e.store(carried.load(c, slot(0, n)), states, {s0, n, c});
        e.store(running ? xX : carried.xSumFromRecord(c, xX, ones), states,
                {s1, n, c});
        e.store(ones, states, {s2, n, c});
      });
    });
  if (running)
    shift.begin();
  // x_X of every n moved to the shift's new (P, o), with x_1 its normaliser.
  auto moveSums = [&] {
    e.loop(w.c0i, N, w.c1i, [&](Value k) {
      e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
        e.vstore(shift.move(cv, e.vload(states, {s1, k, cv}),
                            e.vload(states, {s2, k, cv})),
                 states, {s1, k, cv});
      });
    });
  };
  // Phase 1 of the parallel prefix (state_only): the three scans without
  // the read, and the sum of delta per channel (the segment's decay is
  // e^(A sum delta)).
  bool stateOnly = op.getStateOnly();
  Value deltaSum;
  if (stateOnly) {
    deltaSum = e.alloc({cb}, {});
    e.loop(w.c0i, cCb, w.cLanes,
           [&](Value c) { e.vstore(e.splat(0.0f), deltaSum, {c}); });
  }
  Value cC = e.idx(w.chunk);
  e.loop(w.c0i, e.ceilDiv(w.T, cC), w.c1i, [&](Value ch) {
    Value t0 = e.mul(ch, cC);
    Value n = e.minI(cC, e.sub(w.T, t0));
    if (running)
      shift.advance(t0, e.add(t0, n), moveSums);
    e.loop(w.c0i, n, w.c1i, [&](Value r) {
      Value t = e.add(t0, r);
      // The row kRowsAhead ahead, one operand row per phase (ScanPrefetch.h).
      Value ahead = e.add(t, e.idx(kRowsAhead));
      prefetchScanRowPart(e, op, w, ahead, ScanRowPart::Delta);
      Value scale = stateOnly ? Value() : epilogue.rowScale(t);
      // The row's delta and panel, up to the wide vectors' end (lanes past
      // the block: delta 0, so their decay is 1 and their input 0).
      e.loop(w.c0i, cwpWide, w.cLanes, [&](Value cv) {
        Value lanesLeft = e.mask(e.sub(w.cw, cv));
        Value step = e.vloadMasked(op.getDelta(),
                                   {w.batch, t, e.add(flat0, cv)}, lanesLeft);
        e.vstore(step, stepRow, {cv});
        if (stateOnly)
          e.vstore(e.fadd(e.vload(deltaSum, {cv}), step), deltaSum, {cv});
        auto panel = streams.panel(t, cv);
        e.vstore(panel.first, uRow, {cv});
        e.vstore(panel.second, xRow, {cv});
      });
      prefetchScanRowPart(e, op, w, ahead, ScanRowPart::Values);
      // The decays e^(delta A) of every n.
      e.loop(w.c0i, N, w.c1i, [&](Value k) {
        e.loop(w.c0i, cwpWide, cWide, [&](Value cv) {
          EmitterBuilder &x = wide();
          x.vstore(x.exp(x.fmul(x.vload(stepRow, {cv}), x.vload(aT, {k, cv}))),
                   decayRow, {k, cv});
        });
      });
      if (!stateOnly)
        prefetchScanRowPart(e, op, w, ahead, ScanRowPart::Gate);
      // The three scans and, past phase 1, the reads.
      e.loop(w.c0i, cwpWide, cWide, [&](Value cv) {
        EmitterBuilder &x = wide();
        Value step = x.vload(stepRow, {cv});
        Value u = x.vload(uRow, {cv}), xs = x.vload(xRow, {cv});
        if (stateOnly) {
          e.loop(w.c0i, N, w.c1i, [&](Value k) {
            EmitterBuilder &x = wide();
            Value decay = x.vload(decayRow, {k, cv});
            Value input =
                x.fmul(step, x.bcast(x.load(op.getBs(), {w.batch, t, k})));
            x.vstore(
                x.fma(decay, x.vload(states, {s0, k, cv}), x.fmul(input, u)),
                states, {s0, k, cv});
            x.vstore(
                x.fma(decay, x.vload(states, {s1, k, cv}), x.fmul(input, xs)),
                states, {s1, k, cv});
            x.vstore(x.fma(decay, x.vload(states, {s2, k, cv}), input), states,
                     {s2, k, cv});
          });
          return;
        }
        SmallVector<Value> y = e.loop(
            w.c0i, N, w.c1i, {x.splat(0.0f), x.splat(0.0f), x.splat(0.0f)},
            [&](Value k, ValueRange it) {
              EmitterBuilder &x = wide();
              Value decay = x.vload(decayRow, {k, cv});
              Value input =
                  x.fmul(step, x.bcast(x.load(op.getBs(), {w.batch, t, k})));
              Value out = x.bcast(x.load(op.getCs(), {w.batch, t, k}));
              Value xu =
                  x.fma(decay, x.vload(states, {s0, k, cv}), x.fmul(input, u));
              Value xx =
                  x.fma(decay, x.vload(states, {s1, k, cv}), x.fmul(input, xs));
              Value x1 = x.fma(decay, x.vload(states, {s2, k, cv}), input);
              x.vstore(xu, states, {s0, k, cv});
              x.vstore(xx, states, {s1, k, cv});
              x.vstore(x1, states, {s2, k, cv});
              return SmallVector<Value>{x.fma(out, xu, it[0]),
                                        x.fma(out, xx, it[1]),
                                        x.fma(out, x1, it[2])};
            });
        wide();
        Value skip = x.vloadMasked(op.getD(), {e.add(flat0, cv)},
                                   x.mask(e.sub(w.cw, cv)));
        Value yu = x.fma(skip, u, y[0]);
        Value yx = x.fma(skip, xs, y[1]);
        Value y1 = x.fadd(y[2], skip);
        Value epsV = x.bcast(w.eps);
        Value denom = x.fmax(epsV, y1);
        Value inv = x.fdiv(x.splat(1.0f), denom);
        x.vstore(x.fmul(yu, inv), readRow, {s0, cv});
        x.vstore(x.fmul(yx, inv), readRow, {s1, cv});
        x.vstore(x.splat(0.0f), readRow, {s2, cv});
        // Where y_1 < eps, R(1) = y_1 / eps < 1: the X stream is read as its
        // mean over y_1 and log R(1) goes to the epilogue's log scale, as
        // linear's rows do (ReadLinear.cpp, emitRowDens). Passing R(1) - 1
        // to log1p(R(X - 1) + R(1) - 1) lost R(1) to the rounding of a sum
        // near -1 (1e-3 relative at R(1) = 2e-5; spec_fuzz seed 5201, eps
        // 0.05). log R(1) is log1p((y_1 - eps) / eps) near 1, else
        // log(y_1 / eps); y_1 <= 0 (a weight of -inf): Z <= 0, log Z = -inf.
        Value clamped = x.fcmp(arith::CmpFPredicate::ULT, y1, epsV);
        Value any = vector::ReductionOp::create(x.b, vector::CombiningKind::OR,
                                                clamped);
        storage::ifThen(x.b, any, [&] {
          Value none = x.fcmp(arith::CmpFPredicate::OLE, y1, x.splat(0.0f));
          Value r1m1 = x.fmul(x.fsub(y1, denom), inv);
          Value logR1 = x.log1pOrLog(
              x.fcmp(arith::CmpFPredicate::OGT, r1m1, x.splat(-0.5f)), r1m1,
              x.fmul(y1, inv));
          x.vstore(x.select(none, x.splat(0.0f), x.fdiv(yx, y1)), readRow,
                   {s1, cv});
          x.vstore(x.select(none,
                            x.splat(-std::numeric_limits<float>::infinity()),
                            logR1),
                   readRow, {s2, cv});
        });
      });
      if (stateOnly)
        return;
      prefetchScanRowPart(e, op, w, ahead, ScanRowPart::Lam);
      prefetchScanRowPart(e, op, w, ahead, ScanRowPart::Out);
      e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
        epilogue.store(t, cv, scale, e.vload(readRow, {s0, cv}),
                       e.vload(readRow, {s1, cv}), e.splat(0.0f),
                       e.vload(readRow, {s2, cv}));
      });
    });
  });
  if (running)
    shift.settle(moveSums);
  // x_X in the record's offset form (ScanState::xSumToRecord).
  if (carried.out())
    e.loop(w.c0i, w.cw, w.c1i, [&](Value c) {
      e.loop(w.c0i, N, w.c1i, [&](Value n) {
        Value ones = e.load(states, {s2, n, c});
        Value shifted = e.load(states, {s1, n, c});
        carried.store(c, slot(0, n), e.load(states, {s0, n, c}));
        carried.store(c, slot(1, n), carried.xSumToRecord(c, ones, shifted));
        carried.store(c, slot(2, n), ones);
      });
      if (stateOnly)
        carried.store(c, e.sub(e.dim(op.getStateOut(), 3), w.c1i),
                      e.load(deltaSum, {c}));
    });
  carried.finish();
  e.freeScratch();
  op.erase();
}
