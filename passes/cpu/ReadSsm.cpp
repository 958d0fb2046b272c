//===- ReadSsm.cpp - the ssm read as a per-channel selective scan ----------===//
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
//===----------------------------------------------------------------------===//
#include "passes/cpu/ScanRead.h"

using namespace mlir;
using namespace mlir::fem;
using namespace mlir::fem::cpu;

void mlir::fem::cpu::emitSsmScanRead(ScanReadOp op) {
  EmitterBuilder e(op, op.getLayout(), op.getTiles().getVec());
  ScanWorkgroup w = setUpScanWorkgroup(e, op);
  ValueStreams streams(e, op, w);
  GateEpilogue epilogue(e, op, w, streams);
  ScanState carried(e, op, w, streams);
  streams.emit();
  carried.begin();
  int64_t cb = w.cb;
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
  Value s0 = e.idx(0), s1 = e.idx(1), s2 = e.idx(2);
  // The carried state (dialect/Priors.h: x_mu, x_X, x_1, N each), the X
  // stream moved from the record's offset form to this segment's shift and
  // offset (ScanState::xSumFromRecord; the scan is linear in U).
  using namespace femc::priors;
  auto slot = [&](int64_t stream, Value n) {
    return e.add(e.idx(kStatePriorPart), e.add(e.mul(e.idx(stream), N), n));
  };
  if (carried.in())
    e.loop(w.c0i, w.cw, w.c1i, [&](Value c) {
      e.loop(w.c0i, N, w.c1i, [&](Value n) {
        Value ones = carried.load(c, slot(2, n));
        e.store(carried.load(c, slot(0, n)), states, {s0, n, c});
        e.store(carried.xSumFromRecord(c, carried.load(c, slot(1, n)), ones),
                states, {s1, n, c});
        e.store(ones, states, {s2, n, c});
      });
    });
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
    e.loop(w.c0i, n, w.c1i, [&](Value r) {
      Value t = e.add(t0, r);
      // The row one chunk ahead (ScanRead.h, prefetchScanRow).
      prefetchScanRow(e, op, w, e.add(t, cC), !stateOnly);
      Value scale = stateOnly ? Value() : epilogue.rowScale(t);
      e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
        Value lanesLeft = e.mask(e.sub(w.cw, cv));
        Value flat = e.add(flat0, cv);
        Value step =
            e.vloadMasked(op.getDelta(), {w.batch, t, flat}, lanesLeft);
        auto panel = streams.panel(t, cv);
        Value u = panel.first, x = panel.second;
        if (stateOnly) {
          e.vstore(e.fadd(e.vload(deltaSum, {cv}), step), deltaSum, {cv});
          e.loop(w.c0i, N, w.c1i, [&](Value k) {
            Value decay = e.exp(e.fmul(step, e.vload(aT, {k, cv})));
            Value input =
                e.fmul(step, e.bcast(e.load(op.getBs(), {w.batch, t, k})));
            e.vstore(e.fma(decay, e.vload(states, {s0, k, cv}),
                           e.fmul(input, u)),
                     states, {s0, k, cv});
            e.vstore(e.fma(decay, e.vload(states, {s1, k, cv}),
                           e.fmul(input, x)),
                     states, {s1, k, cv});
            e.vstore(e.fma(decay, e.vload(states, {s2, k, cv}), input),
                     states, {s2, k, cv});
          });
          return;
        }
        SmallVector<Value> y = e.loop(
            w.c0i, N, w.c1i, {e.splat(0.0f), e.splat(0.0f), e.splat(0.0f)},
            [&](Value k, ValueRange it) {
              Value decay = e.exp(e.fmul(step, e.vload(aT, {k, cv})));
              Value input =
                  e.fmul(step, e.bcast(e.load(op.getBs(), {w.batch, t, k})));
              Value out = e.bcast(e.load(op.getCs(), {w.batch, t, k}));
              Value xu = e.fma(decay, e.vload(states, {s0, k, cv}),
                               e.fmul(input, u));
              Value xx = e.fma(decay, e.vload(states, {s1, k, cv}),
                               e.fmul(input, x));
              Value x1 = e.fma(decay, e.vload(states, {s2, k, cv}), input);
              e.vstore(xu, states, {s0, k, cv});
              e.vstore(xx, states, {s1, k, cv});
              e.vstore(x1, states, {s2, k, cv});
              return SmallVector<Value>{e.fma(out, xu, it[0]),
                                        e.fma(out, xx, it[1]),
                                        e.fma(out, x1, it[2])};
            });
        Value skip = e.vloadMasked(op.getD(), {flat}, lanesLeft);
        Value yu = e.fma(skip, u, y[0]);
        Value yx = e.fma(skip, x, y[1]);
        Value y1 = e.fadd(y[2], skip);
        Value denom = e.fmax(e.bcast(w.eps), y1);
        Value inv = e.fdiv(e.splat(1.0f), denom);
        Value r1m1 = e.fdiv(e.fsub(y1, denom), denom);
        epilogue.store(t, cv, scale, e.fmul(yu, inv), e.fmul(yx, inv), r1m1);
      });
    });
  });
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
