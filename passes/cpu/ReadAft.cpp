//===- ReadAft.cpp - the aft read as a per-channel running sum -------------===//
//
// aft (the reference's rnn_softmax, always causal), for the block's channels
// c of both halves of [clipped | X - o] (channel j of the concatenated width
// W = 2 dv uses q/k channel j mod dk, and dk | dv, so channels c and dv + c
// share q/k channel c mod dk):
//
//   pre-pass: kmax[i] = max over all keys of k[i]       (quirk: future keys)
//   per row t: p = softplus(q_t) + eps (dk channels), ||p||_W^2 = (W/dk)
//              sum_i p_i^2, qhat_j = p_(j mod dk) / max(||p||_W, 1e-5)
//              sqrt(W); kappa_j = e^(k_t[j mod dk] - kmax) + eps;
//              den += kappa, num += kappa * panel_t;
//              mu = qhat num_mu / max(den, eps), Z = qhat num_X / max(den, eps)
//
// The q/k channel of each lane comes from a vector gather. log Z gains
// log(qhat).
//
//===----------------------------------------------------------------------===//
#include "passes/cpu/ScanRead.h"

using namespace mlir;
using namespace mlir::fem;
using namespace mlir::fem::cpu;

void mlir::fem::cpu::emitAftScanRead(ScanReadOp op) {
  EmitterBuilder e(op, op.getLayout(), op.getTiles().getVec());
  ScanWorkgroup w = setUpScanWorkgroup(e, op);
  ValueStreams streams(e, op, w);
  GateEpilogue epilogue(e, op, w, streams);
  streams.emit();
  int64_t cb = w.cb;
  Value dk = w.dk;
  // q/k channels as vectors: [0, dkp) with the lanes past dk masked off.
  Value dkp = e.roundUp(dk, w.cLanes);
  Value kmax = e.alloc({ShapedType::kDynamic}, {dkp});
  Value pBuf = e.alloc({ShapedType::kDynamic}, {dkp});
  Value numMu = e.alloc({cb}, {});
  Value numX = e.alloc({cb}, {});
  Value den = e.alloc({cb}, {});
  e.loop(w.c0i, e.idx(cb), w.cLanes, [&](Value c) {
    e.vstore(e.splat(0.0f), numMu, {c});
    e.vstore(e.splat(0.0f), numX, {c});
    e.vstore(e.splat(0.0f), den, {c});
  });
  Value negInf = e.splat(-std::numeric_limits<float>::infinity());
  e.loop(w.c0i, dkp, w.cLanes, [&](Value d) {
    Value lanesLeft = e.mask(e.sub(dk, d));
    Value m = e.loop(w.c0i, w.S, w.c1i, {negInf}, [&](Value s, ValueRange it) {
      Value key = e.vloadMasked(op.getK(), e.at(w.batch, s, w.kvHead, d),
                                lanesLeft);
      return SmallVector<Value>{e.fmaxNaN(key, it[0])};
    })[0];
    e.vstore(m, kmax, {d});
  });
  Value width = e.mul(w.dv, e.idx(2));
  Value widthF = e.toFloat(width);
  Value sqrtW = e.sqrt(widthF);
  Value repeat = e.fdiv(widthF, e.toFloat(dk));
  auto indexVec = VectorType::get({e.lanes}, e.b.getIndexType());
  Value lane = vector::StepOp::create(e.b, indexVec);
  Value cC = e.idx(w.chunk);
  e.loop(w.c0i, e.ceilDiv(w.T, cC), w.c1i, [&](Value ch) {
    Value t0 = e.mul(ch, cC);
    Value n = e.minI(cC, e.sub(w.T, t0));
    // The next chunk's rows (Builder.h, prefetchRow).
    e.loop(w.c0i, cC, w.c1i, [&](Value r) {
      Value t = e.minI(e.add(e.add(t0, cC), r), e.sub(w.T, w.c1i));
      e.prefetchRow(op.getQ(), w.batch, t, w.head, w.c0i, dk);
      e.prefetchRow(op.getK(), w.batch, t, w.kvHead, w.c0i, dk);
      e.prefetchRow(op.getV(), w.batch, t, w.kvHead, w.chan0, w.cw);
      e.prefetchRow(op.getGate(), w.batch, t, w.head, w.c0i, w.dv);
      e.prefetchRow(op.getLam(), w.batch, t, w.head, w.chan0, w.cw);
      e.prefetchRow(op.getOut(), w.batch, t, w.head, w.chan0, w.cw,
                    /*write=*/true);
    });
    e.loop(w.c0i, n, w.c1i, [&](Value r) {
      Value t = e.add(t0, r);
      Value sq = e.loop(
          w.c0i, dkp, w.cLanes, {e.splat(0.0f)}, [&](Value d, ValueRange it) {
            Value lanesLeft = e.mask(e.sub(dk, d));
            Value q = e.vloadMasked(op.getQ(), e.at(w.batch, t, w.head, d),
                                    lanesLeft);
            Value p = e.select(lanesLeft,
                               e.fadd(e.softplus(q), e.bcast(w.eps)),
                               e.splat(0.0f));
            e.vstore(p, pBuf, {d});
            return SmallVector<Value>{e.fma(p, p, it[0])};
          })[0];
      Value sumSq =
          vector::ReductionOp::create(e.b, vector::CombiningKind::ADD, sq);
      Value qNorm = e.fmax(e.cst(1e-5f), e.sqrt(e.fmul(sumSq, repeat)));
      Value qScale = e.bcast(e.fdiv(sqrtW, qNorm));
      Value scale = epilogue.rowScale(t);
      e.loop(w.c0i, w.cwp, w.cLanes, [&](Value cv) {
        Value lanesLeft = e.mask(e.sub(w.cw, cv));
        Value channel = arith::AddIOp::create(
            e.b, lane, vector::BroadcastOp::create(e.b, indexVec,
                                                   e.add(w.chan0, cv)));
        Value qk = arith::RemSIOp::create(
            e.b, channel, vector::BroadcastOp::create(e.b, indexVec, dk));
        Value key = e.gather(op.getK(), e.at(w.batch, t, w.kvHead, w.c0i), qk,
                             lanesLeft);
        Value kappa = e.fadd(
            e.exp(e.fsub(key, e.gather(kmax, {w.c0i}, qk, lanesLeft))),
            e.bcast(w.eps));
        auto [clipped, tilted] = streams.panel(t, cv);
        Value d = e.fadd(e.vload(den, {cv}), kappa);
        Value nm = e.fma(kappa, clipped, e.vload(numMu, {cv}));
        Value nx = e.fma(kappa, tilted, e.vload(numX, {cv}));
        e.vstore(d, den, {cv});
        e.vstore(nm, numMu, {cv});
        e.vstore(nx, numX, {cv});
        Value qHat = e.fmul(e.gather(pBuf, {w.c0i}, qk, lanesLeft), qScale);
        // max(den, eps) that lets NaN through.
        Value denom = e.fmax(e.bcast(w.eps), d);
        Value inv = e.fdiv(e.splat(1.0f), denom);
        Value r1m1 = e.fdiv(e.fsub(d, denom), denom);
        epilogue.store(t, cv, scale, e.fmul(qHat, e.fmul(nm, inv)),
                       e.fmul(nx, inv), r1m1, e.log(qHat));
      });
    });
  });
  e.freeScratch();
  op.erase();
}
