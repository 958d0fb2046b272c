//===- ReadSoftmax.cpp - the online-softmax read of fem.tile_read
//----------===//
//
// Emits the fused online-softmax FEM read (docs/architecture.md) for one
// workgroup: rows [t0, t0 + rows) of the g = H/Hkv query heads that share kv
// head `wy` of batch `wz`.
//
//   pre-pass: max/min of the raw values over the unmasked keys of the kv
//     head, then per head j: beta = softplus(beta_raw) + eps,
//     bound = cap/beta, vmax = clamp(max v, ±bound), M = beta*vmax
//     (= max beta*clamp(v))
//   per key tile (causal: only tiles starting at or before the last row):
//     the column mask (key exists and is not padded out), then per head j:
//       panel = [clamp(v) | X] (Bk x 2*dvp) with z = beta*(clamp(v) - vmax)
//               and X = e^z, or X = expm1(z) for narrow channels (see
//               emitPrePass)
//       S^T = K Q^T  with Q^T packed once per workgroup; rows on vector
//             lanes, register-blocked FMAs
//       m' = max(m, rowmax S); alpha = e^(scale*(m - m')) (below e^-80:
//       (alpha * 2^24) * 2^-24, so the rescale keeps what P kept)
//       P = e^(scale*(S - m')) * 2^24  (the scale multiplies differences, so
//       no logit overflows for any float32 scale; 2^24 keeps weights down to
//       e^-104.6 from flushing, see weightExp)
//       l = alpha*l + rowsum P; acc = alpha*acc + P * panel   (one contraction)
//   epilogue: mu = acc/l, F = (logaddexp(log(Z/l), log tiny - M) + M)/beta,
//             the gate with a scaled norm, one store per output element.
//
// dvp is dv rounded up to the vector width; the padding lanes are computed but
// never stored. All scratch is sized by the tiles, dk and dv, never by T or S.
//
//===----------------------------------------------------------------------===//
#include "passes/cpu/ReadSoftmax.h"
#include "passes/cpu/LowerScanRead.h"
#include "passes/Passes.h"

#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <cmath>
#include <numeric>

#define DEBUG_TYPE "fem-lower-to-cpu"

using namespace mlir;
using namespace mlir::fem;
using namespace mlir::fem::cpu;

namespace {

/// Register blocking of the value contraction: query rows x vectors of the
/// 2*dvp accumulator width.
constexpr int64_t kRowBlock = 6;
constexpr int64_t kColBlock = 2;
/// Keys x row vectors per block in the score contraction. With the 6 x 2 of
/// the value contraction, 12 accumulators: enough independent FMA chains to
/// cover the FMA latency on two pipes, and 16 vector registers in all.
constexpr int64_t kKeyBlock = 4;
constexpr int64_t kScoreRowVecs = 3;
using cpu::kLogTiny;
/// Rows of q (packQuery) and of gate, lambda and out (the epilogue) fetched
/// ahead of the row being read.
constexpr int64_t kRowsAhead = 4;

/// The f32 read's register blocking.
constexpr SoftmaxReadEmitter::Blocking kF32Blocking = {kRowBlock, kColBlock,
                                                       kKeyBlock, kScoreRowVecs};
/// With 16 lanes (AVX-512: 32 vector registers) twice the accumulators:
/// 12 rows x 2 vectors in the value contraction, 8 keys x 3 row vectors in
/// the scores, as the bf16 read does. The row quantum (48) and the tile
/// rule (colBlock = 2) stay those of kF32Blocking, and every accumulator
/// sums the same terms in the same order, so the results are bitwise those
/// of kF32Blocking (docs/benchmarks.md, "Where the time goes").
constexpr SoftmaxReadEmitter::Blocking kF32Blocking16 = {12, kColBlock, 8,
                                                         kScoreRowVecs};

SoftmaxReadEmitter::Blocking f32Blocking(int64_t lanes) {
  return lanes == 16 ? kF32Blocking16 : kF32Blocking;
}

/// e^x for x <= 0 (the read's weights P and tilted values X) on 4 and 8
/// lanes, where math.exp's expansion (two clamps of x, two of n, a degree-7
/// Horner chain: about 23 instructions on a dependency chain of ~70 cycles)
/// left the exp pass latency-bound on Zen 2 (docs/benchmarks.md, "AVX2").
/// x = n ln 2 + r with n = round(x log2 e) by the 1.5 * 2^23 trick (whose
/// bits then hold n + 127), r = x - n ln 2 in two FMAs (Cody and Waite's
/// split of ln 2), e^r = 1 + q with q = r + r^2 (c2 + c3 r) + r^4 (c4 + c5 r
/// + c6 r^2), a minimax fit on |r| <= ln 2 / 2 (relative error 2e-9) in
/// Estrin's form, and e^x = 2^n + q 2^n in one FMA, 2^n made from k's bits.
/// Over every float x in [-87.3, 0] (against double exp): at most 1.4 ulp,
/// mean 0.067 ulp (math.exp: 1.0 and 0.066); e^0 = 1 exactly. x < -88
/// gives 0 (2^-127 is built as 0); NaN stays NaN. 15 instructions on a
/// chain of ~40 cycles. A positive x is outside the domain (no e^x: the
/// read selects such lanes away). With scaleLog2 = K > 0 it returns
/// e^x * 2^K exactly as scaled (K goes into the exponent bits, no extra
/// rounding), and 0 only below x = -88 - K ln 2.
Value expNonPositive(EmitterBuilder &e, Value x, int scaleLog2 = 0) {
  Value lo = e.splat(-88.0f - static_cast<float>(scaleLog2 * M_LN2));
  // Clamped below; a NaN x stays (the compare is false).
  x = e.select(e.fcmp(arith::CmpFPredicate::OLT, x, lo), lo, x);
  // 1.5 * 2^23 + 127 + K: k's low bits hold n + 127 + K
  Value magic = e.splat(12582912.0f + 127.0f + scaleLog2);
  Value k = e.fadd(e.fmul(x, e.splat(1.44269504088896341f)), magic);
  Value n = e.fsub(k, magic);
  // ln 2 = 0.693359375 (9 bits: n * it is exact) - 2.12194440e-4.
  Value r = e.fma(n, e.splat(-0.693359375f), x);
  r = e.fma(n, e.splat(2.12194440e-4f), r);
  Value r2 = e.fmul(r, r), r4 = e.fmul(r2, r2);
  Value mid = e.fma(r, e.splat(1.666643173e-1f), e.splat(4.999999404e-1f));
  Value high =
      e.fma(r2, e.splat(1.384609961e-3f),
            e.fma(r, e.splat(8.374159224e-3f), e.splat(4.166796431e-2f)));
  Value q = e.fma(r4, high, e.fma(r2, mid, r));
  // k's low bits hold n + 127 + K (0 to 127 + K): shifted into the
  // exponent field they are 2^(n + K) (0 for n = -127 - K).
  auto vi32 = VectorType::get({e.lanes}, e.b.getI32Type());
  Value pow2 = arith::BitcastOp::create(
      e.b, e.vf,
      arith::ShLIOp::create(e.b, arith::BitcastOp::create(e.b, vi32, k),
                            storage::intConstant(e.b, vi32, 23)));
  return e.fma(q, pow2, pow2);
}

/// e^x for the read's weights, tilted values and rescale factors (x <= 0):
/// expNonPositive on 4 and 8 lanes; math.exp with 16 lanes (AVX-512), where
/// the shorter form has not been timed yet.
Value readExp(EmitterBuilder &e, Value x) {
  return e.lanes == 16 ? e.exp(x) : expNonPositive(e, x);
}

/// The online softmax's weights P are e^(scale (S - m)) * 2^kWeightLog2,
/// in (0, 2^24]: the factor cancels in mu = acc/l and Z = acc/l, and keeps
/// every weight down to e^-104.6 instead of flushing those below float32's
/// smallest normal (e^-87.3) to 0. Z sums P X with X = e^z in (e^-2cap, 1],
/// so where the heaviest key's X is near e^-86 (beta V clipped at -cap, M at
/// +cap), a key of weight e^-88 and X = 1 carries a tenth of Z: flushed, it
/// moved F by log(1.1)/beta (layer_fuzz seed 3 index 396: 1.7e-4 max|y|).
/// Now the weights lost are below e^-104.6, under e^-18 (1e-8) of Z. The
/// cost is headroom: acc holds up to S 2^24 max|V~| (overflow needs
/// max|V~| > 2e31/S, i.e. eps near 1e-30 and |v| near 1e30). Used at every
/// vector width (math.exp, the 16-lane readExp, flushes as well).
constexpr int kWeightLog2 = 24;
Value weightExp(EmitterBuilder &e, Value x) {
  return expNonPositive(e, x, kWeightLog2);
}

} // namespace

/// The scalar and vector vocabulary (arithmetic, NaN-transparent max/min/
/// clamp, expm1 on narrow channels, storage-converting loads and stores,
/// scratch, scf loops) is the emitters' EmitterBuilder (Builder.h).
SoftmaxReadEmitter::SoftmaxReadEmitter(TileReadOp op, Blocking blocking)
    : EmitterBuilder(op, op.getLayout(), op.getTiles().getVec()), op(op),
      bq(op.getTiles().getQ()), bk(op.getTiles().getK()), blocking(blocking) {}

LogicalResult SoftmaxReadEmitter::emit() {
  c0 = idx(0);
  c1 = idx(1);
  cLanes = idx(lanes);
  cBq = idx(bq);
  // Row buffers are padded so every register block stays inside them; the
  // padding rows compute garbage that is never stored.
  int64_t rowQuantum = std::lcm(
      std::lcm(blocking.scoreRowVecs * lanes, blocking.rowBlock), lanes);
  bqPad = (bq + rowQuantum - 1) / rowQuantum * rowQuantum;
  cBqPad = idx(bqPad);
  cRowQuantum = idx(rowQuantum);
  cBk = idx(bk);
  cRB = idx(blocking.rowBlock);
  unsigned ta = timeAxis(layout), ha = headAxis(layout);
  T = dim(op.getQ(), ta);
  S = dim(op.getK(), ta);
  Value H = dim(op.getQ(), ha);
  Value hkv = dim(op.getK(), ha);
  dk = dim(op.getQ(), 3);
  dv = dim(op.getV(), 3);
  dvp = mul(ceilDiv(dv, cLanes), cLanes);
  group = arith::DivSIOp::create(b, H, hkv);
  batch = op.getWgZ();
  kvHead = op.getWgY();
  // Query tiles run in reverse so that the longest causal rows start first.
  Value numQTiles = ceilDiv(T, cBq);
  Value qTile = sub(sub(numQTiles, c1), op.getWgX());
  t0 = mul(qTile, cBq);
  rows = minI(cBq, sub(T, t0));
  rowsPadded = mul(ceilDiv(rows, cRB), cRB);
  twenty = cst(20.0f);
  negInf = cst(-std::numeric_limits<float>::infinity());
  if (auto s = op.getScaleAttr()) {
    scale = cst(static_cast<float>(s.getValueAsDouble()));
  } else {
    scale = fdiv(cst(1.0f), sqrt(toFloat(dk)));
  }

  width = mul(dvp, idx(2));
  allocOperands();
  acc = alloc({ShapedType::kDynamic, bqPad, ShapedType::kDynamic}, {group, width});
  rowMax = alloc({ShapedType::kDynamic, bqPad}, {group});
  rowSum = alloc({ShapedType::kDynamic, bqPad}, {group});
  alpha = alloc({bqPad}, {});
  alphaLow = alloc({bqPad}, {});
  betaBuf = alloc({ShapedType::kDynamic, ShapedType::kDynamic}, {group, dvp});
  boundBuf = alloc({ShapedType::kDynamic, ShapedType::kDynamic}, {group, dvp});
  shiftBuf = alloc({ShapedType::kDynamic, ShapedType::kDynamic}, {group, dvp});
  vmaxBuf = alloc({ShapedType::kDynamic, ShapedType::kDynamic}, {group, dvp});
  offsetBuf = alloc({ShapedType::kDynamic, ShapedType::kDynamic}, {group, dvp});
  colOk = alloc({bk}, {});
  gateBuf = alloc({ShapedType::kDynamic}, {dvp});
  panelKindBuf = alloc({ShapedType::kDynamic}, {group});

  emitPrePass();

  // Key tiles: all of them, or (causal) those starting at or before the last
  // row of this query tile; the diagonal tile is masked per element.
  Value numKTiles = op.getCausal() ? ceilDiv(minI(add(t0, rows), S), cBk)
                                   : ceilDiv(S, cBk);
  loop(c0, numKTiles, c1, [&](Value kt) { emitKeyTile(kt); });

  emitEpilogue();
  freeScratch();
  op.erase();
  return success();
}

void SoftmaxReadEmitter::allocOperands() {
  panel = alloc({bk, ShapedType::kDynamic}, {width});
  scoresT = alloc({bk, bqPad}, {});
  qT = alloc({ShapedType::kDynamic, ShapedType::kDynamic, bqPad}, {group, dk});
  if (cpu::storage::isNarrow(cpu::storage::elementType(op.getK())))
    keyTile = alloc({bk, ShapedType::kDynamic}, {dk});
}

void SoftmaxReadEmitter::emitPrePass() {
  Value eps = cst(static_cast<float>(op.getEpsAttr().getValueAsDouble()));
  Value cap = cst(static_cast<float>(op.getCapAttr().getValueAsDouble()));
  loop(c0, cBqPad, c1, [&](Value r) {
    store(cst(1.0f), alpha, {r});
    store(cst(1.0f), alphaLow, {r});
  });
  // The shift M = max over unmasked keys of beta*clamp(v, +-cap/beta). Both
  // beta* and clamp are monotone, so M = beta*clamp(max v): one pass over the
  // raw values of the kv head serves every query head of the group. A NaN
  // value makes M NaN, as the reference's max does. A causal tile takes M
  // (and the narrow range) over the keys its rows see, [0, t0 + rows): M
  // cancels, and rows before a late large value then read X = 1, not
  // e^-M with its rounding (F's error ~u M / beta, against an output that
  // may be far smaller); the later keys still pass on a NaN.
  Value vHi = alloc({ShapedType::kDynamic}, {dvp});
  Value vLo = alloc({ShapedType::kDynamic}, {dvp});
  Value vNan = alloc({ShapedType::kDynamic}, {dvp});
  // The read centres its tilt (dialect/Priors.h, kCentredRange): the sum
  // of the kept raw values for their mean, over the keys the tile's rows
  // see (all S of them when not causal, [0, t0 + rows) when causal).
  Value seen = op.getCausal() ? minI(add(t0, rows), S) : S;
  Value vSum = alloc({ShapedType::kDynamic}, {dvp});
  constexpr int64_t perVec = 4;
  // Keys inner, over blocks of up to kPrePassVecs channel vectors held in
  // registers: each key's values of the block are one contiguous run, read
  // once (one vector of channels at a time walked every key's cache lines
  // once per vector, a strided pass over the whole kv head each time).
  // Vectors of the block past dvp load nothing and are not stored.
  constexpr int64_t kPrePassVecs = 4, kPrePassAhead = 16;
  auto vi1 = VectorType::get({lanes}, b.getI1Type());
  Value noNan =
      arith::ConstantOp::create(b, vi1, DenseElementsAttr::get(vi1, false));
  loop(c0, dvp, idx(kPrePassVecs * lanes), [&](Value cBlock) {
    SmallVector<Value> cs, inits;
    for (int64_t i = 0; i < kPrePassVecs; ++i) {
      cs.push_back(add(cBlock, idx(i * lanes)));
      inits.append({bcast(negInf), bcast(cst(INFINITY)), noNan, splat(0.0f)});
    }
    auto step =
        [&](Value s, ValueRange it, bool nanOnly) {
          Value keep =
              op.getMask() ? maskKeeps(op.getMask(), batch, s) : Value();
          // The kv head's rows lie H*dv values apart, a few per page, where
          // the hardware prefetchers stop: fetch kPrePassAhead keys ahead (the
          // pass is bound by the latency of these loads otherwise).
          for (int64_t i = 0; i < kPrePassVecs; ++i)
            prefetch(op.getV(), at(batch, add(s, idx(kPrePassAhead)), kvHead,
                                   minI(cs[i], sub(dvp, c1))));
          SmallVector<Value> next;
          for (int64_t i = 0; i < kPrePassVecs; ++i) {
            Value v = vloadMasked(op.getV(), at(batch, s, kvHead, cs[i]),
                                  mask(sub(dv, cs[i])));
            ValueRange old = it.slice(perVec * i, perVec);
            Value hi = nanOnly ? old[0] : fmax(v, old[0]);
            Value lo = nanOnly ? old[1] : fmin(v, old[1]);
            Value nan = arith::OrIOp::create(
                b, old[2], fcmp(arith::CmpFPredicate::UNO, v, v));
            Value sum = nanOnly ? old[3] : fadd(old[3], v);
            if (keep) {
              hi = select(keep, hi, old[0]);
              lo = select(keep, lo, old[1]);
              nan = select(keep, nan, old[2]);
              sum = select(keep, sum, old[3]);
            }
            next.append({hi, lo, nan, sum});
          }
          return next;
        };
    SmallVector<Value> red =
        loop(c0, seen, c1, inits,
             [&](Value s, ValueRange it) { return step(s, it, false); });
    if (op.getCausal())
      red = loop(seen, S, c1, red,
                 [&](Value s, ValueRange it) { return step(s, it, true); });
    for (int64_t i = 0; i < kPrePassVecs; ++i)
      when(arith::CmpIOp::create(b, arith::CmpIPredicate::slt, cs[i], dvp),
           [&] {
             vstore(red[perVec * i], vHi, {cs[i]});
             vstore(red[perVec * i + 1], vLo, {cs[i]});
             vstore(select(red[perVec * i + 2], splat(NAN), splat(0.0f)), vNan,
                    {cs[i]});
             vstore(red[perVec * i + 3], vSum, {cs[i]});
           });
  });
  // The number of kept keys the tile sees, for the centre's mean.
  Value kept = keptKeys(op.getMask(), batch, seen);
  auto vi1Wide = VectorType::get({lanes}, b.getI1Type());
  Value noLane =
      arith::ConstantOp::create(b, vi1Wide, DenseElementsAttr::get(vi1Wide, false));
  loop(c0, group, c1, [&](Value j) {
    Value h = add(mul(kvHead, group), j);
    Value anyOffset =
        loop(c0, dvp, cLanes, {noLane}, [&](Value c, ValueRange it) {
          Value lanesLeft = mask(sub(dv, c));
          Value raw =
              vloadMasked(op.getBetaRaw(), {add(mul(h, dv), c)}, lanesLeft);
          Value beta = fadd(softplus(raw, bcast(twenty)), bcast(eps));
          Value bound = fdiv(bcast(cap), beta);
          vstore(beta, betaBuf, {j, c});
          vstore(bound, boundBuf, {j, c});
          auto [vShift, offsetLanes] = softmaxTiltShift(
              *this, vload(vHi, {c}), vload(vLo, {c}), vload(vSum, {c}), kept,
              vload(vNan, {c}), beta, bound);
          vstore(vShift, vmaxBuf, {j, c});
          vstore(fmul(beta, vShift), shiftBuf, {j, c});
          vstore(select(offsetLanes, splat(1.0f), splat(0.0f)), offsetBuf,
                 {j, c});
          // Padding lanes (v = 0) always count as narrow: only real channels
          // decide whether the head needs the offset at all.
          return SmallVector<Value>{arith::OrIOp::create(
              b, it[0], arith::AndIOp::create(b, offsetLanes, lanesLeft))};
        })[0];
    store(select(vector::ReductionOp::create(b, vector::CombiningKind::OR,
                                             anyOffset),
                 cst(1.0f), cst(0.0f)),
          panelKindBuf, {j});
    packQuery(j, h);
    loop(c0, cBqPad, c1, [&](Value r) {
      store(negInf, rowMax, {j, r});
      store(cst(0.0f), rowSum, {j, r});
      loop(c0, width, cLanes,
           [&](Value c) { vstore(splat(0.0f), acc, {j, r, c}); });
    });
  });
}

void SoftmaxReadEmitter::packQuery(Value j, Value h) {
  // Q^T of this head, unscaled (the softmax applies the scale to score
  // differences); rows past the end repeat the last row.
  Value tLast = sub(T, c1);
  loop(c0, cBqPad, c1, [&](Value r) {
    Value t = minI(add(t0, r), tLast);
    // The rows lie H*dk values apart, one page or more at the layer's
    // shapes, where the hardware prefetchers stop: fetch a few rows ahead.
    prefetchRow(op.getQ(), batch, minI(add(t, idx(kRowsAhead)), tLast), h,
                c0, dk);
    loop(c0, dk, c1, [&](Value d) {
      store(load(op.getQ(), at(batch, t, h, d)), qT, {j, d, r});
    });
  });
}

void SoftmaxReadEmitter::emitKeyTile(Value kt) {
  Value s0 = mul(kt, cBk);
  keyStart = s0;
  Value ncols = minI(cBk, sub(S, s0));
  // Causal: rows before s0 - t0 see no key of this tile; the three loops
  // start at the first register block that contains a row that does.
  // All three start at the same multiple of the row quantum (a multiple of
  // every block size), so the softmax covers every row the contraction
  // reads and the scores every row the softmax reads.
  Value rowStart = c0;
  if (op.getCausal())
    rowStart = floorTo(arith::MaxSIOp::create(b, c0, minI(sub(s0, t0), rows)),
                       cRowQuantum);
  // Column mask: 1 for keys that exist and are not padded out.
  loop(c0, cBk, cLanes, [&](Value cc) {
    Value inRange = mask(sub(ncols, cc));
    Value ok = inRange;
    if (Value keyMask = op.getMask()) {
      auto vi8 = VectorType::get({lanes}, b.getI8Type());
      Value zero8 = arith::ConstantOp::create(
          b, vi8, DenseElementsAttr::get(vi8, b.getI8IntegerAttr(0)));
      Value bytes = vector::MaskedLoadOp::create(
          b, vi8, keyMask, ValueRange{batch, add(s0, cc)}, inRange, zero8);
      ok = arith::AndIOp::create(
          b, ok, arith::CmpIOp::create(b, arith::CmpIPredicate::ne, bytes, zero8));
    }
    vstore(select(ok, splat(1.0f), splat(0.0f)), colOk, {cc});
  });
  packKeys(s0, ncols);
  // The next tile's keys and values (rows H*d values apart, see packQuery)
  // while this one computes; past the last tile this fetches the last key.
  {
    Value sLast = sub(S, c1);
    Value next = add(s0, cBk);
    loop(c0, cBk, c1, [&](Value col) {
      Value key = minI(add(next, col), sLast);
      prefetchRow(op.getK(), batch, key, kvHead, c0, dk);
      prefetchRow(op.getV(), batch, key, kvHead, c0, dv);
    });
  }

  loop(c0, group, c1, [&](Value j) {
    Value h = add(mul(kvHead, group), j);
    // A head with no offset channel (the usual case: causal reads, wide
    // spans) takes X = e^z alone, without the expm1 polynomial.
    auto panelAs = [&](PanelKind k) {
      return [&, k] {
        panelKind = k;
        emitPanel(j, s0, ncols);
        panelKind = PanelKind::Offset;
      };
    };
    branch(fcmp(arith::CmpFPredicate::OGT, load(panelKindBuf, {j}), cst(0.5f)),
           panelAs(PanelKind::Offset), panelAs(PanelKind::Plain));
    emitScores(j, h, s0, ncols, rowStart);
    emitOnlineSoftmax(j, s0, ncols, rowStart);
    emitContraction(j, ncols, rowStart);
  });
}

void SoftmaxReadEmitter::packKeys(Value s0, Value ncols) {
  if (keyTile) {
    // The tile's keys widened once for every head of the group; rows past
    // the end repeat the last key (emitScores reads whole key blocks).
    Value kb = idx(blocking.keyBlock);
    loop(c0, mul(ceilDiv(ncols, kb), kb), c1, [&](Value col) {
      Value key = minI(add(s0, col), sub(S, c1));
      loop(c0, dk, cLanes, [&](Value d) {
        Value lanesLeft = mask(sub(dk, d));
        vector::MaskedStoreOp::create(
            b, keyTile, ValueRange{col, d}, lanesLeft,
            vloadMasked(op.getK(), at(batch, key, kvHead, d), lanesLeft));
      });
    });
  }
}

TiltShift mlir::fem::cpu::softmaxTiltShift(EmitterBuilder &e, Value hi,
                                           Value lo, Value sum, Value kept,
                                           Value nan, Value beta, Value bound) {
  Value negInf = e.bcast(e.cst(-std::numeric_limits<float>::infinity()));
  Value negBound = e.neg(bound);
  Value vMax = e.clamp(hi, negBound, bound);
  Value loClip = e.clamp(lo, negBound, bound);
  Value minV = e.fmul(beta, loClip);
  // No visible key at all: M = 0 (it cancels anyway).
  Value none = e.fcmp(arith::CmpFPredicate::OEQ, hi, negInf);
  vMax = e.fadd(e.select(none, e.splat(0.0f), vMax), nan);
  Value maxV = e.fmul(beta, vMax);
  // Where every tilted value lies in [1/2, 1] (max - min <= ln 2, e.g.
  // small beta or a small cap), the panel stores X - 1 = expm1(z) and
  // the epilogue takes log1p: F's error is then relative to |X - 1|,
  // not to X, which matters because F divides log Z by a small beta.
  // X - 1 must be formed without rounding X: e^z rounds to 1 +- 6e-8,
  // which is all of X - 1 once beta*(max - min) is near 1e-6.
  Value span = e.fsub(maxV, minV);
  Value narrow = e.fcmp(arith::CmpFPredicate::OLE, span,
                        e.splat(femc::priors::kNarrowRange));
  // Centred channels (span <= kCentredRange): the shift near the
  // values' mean, in value units v_c = clip(mean) inside
  // [min, min(max, min + kCentreSpan / beta)], and X - 1 (expm1
  // where |z| <= ln 2, panelValues).
  Value mean = e.clamp(e.fdiv(sum, e.bcast(kept)), negBound, bound);
  Value vc = e.centreShift(mean, loClip, vMax,
                           e.fdiv(e.splat(femc::priors::kCentreSpan), beta));
  Value centred = arith::AndIOp::create(
      e.b,
      e.fcmp(arith::CmpFPredicate::OLE, span,
             e.splat(femc::priors::kCentredRange)),
      e.fcmp(arith::CmpFPredicate::UNE, hi, negInf));
  return {e.select(centred, vc, vMax),
          arith::OrIOp::create(e.b, narrow, centred)};
}

Value SoftmaxReadEmitter::keyKept(Value col) {
  return fcmp(arith::CmpFPredicate::OGT, load(colOk, {col}), cst(0.5f));
}

std::pair<Value, Value> SoftmaxReadEmitter::panelValues(Value j, Value key,
                                                        Value c, Value keep) {
  Value v = vloadMasked(op.getV(), at(batch, key, kvHead, c), mask(sub(dv, c)));
  Value beta = vload(betaBuf, {j, c});
  Value bound = vload(boundBuf, {j, c});
  Value clipped = clamp(v, neg(bound), bound);
  // z = beta*clipped - M, formed from the difference of the values so
  // that small differences survive a small beta.
  Value z = fmul(beta, fsub(clipped, vload(vmaxBuf, {j, c})));
  Value tilted = readExp(*this, z);
  if (panelKind == PanelKind::Offset)
    tilted = offsetTilt(z, tilted, vload(offsetBuf, {j, c}));
  if (keep) { // padded keys contribute nothing, even if v is not finite
    clipped = select(keep, clipped, splat(0.0f));
    tilted = select(keep, tilted, splat(0.0f));
  }
  return {clipped, tilted};
}

void SoftmaxReadEmitter::emitPanel(Value j, Value s0, Value ncols) {
  // Value panel [clipped | tilted] for this head's beta.
  loop(c0, ncols, c1, [&](Value col) {
    Value keep = op.getMask() ? keyKept(col) : Value();
    loop(c0, dvp, cLanes, [&](Value c) {
      auto [clipped, tilted] = panelValues(j, add(s0, col), c, keep);
      vstore(clipped, panel, {col, c});
      vstore(tilted, panel, {col, add(dvp, c)});
    });
  });
}

void SoftmaxReadEmitter::emitScores(Value j, Value h, Value s0, Value ncols,
                             Value rowStart) {
  // S^T[col][r] = sum_d k[s0 + col][d] * (scale * Q^T)[d][r]: rows on vector
  // lanes, kKeyBlock keys x kScoreRowVecs row vectors of accumulators.
  Value sLast = sub(S, c1);
  scoreBlocks(
      ncols, rowStart, dk,
      [&](Value col) {
        // Keys past the end repeat the last key; their scores are never read.
        SmallVector<Value> key;
        for (int64_t i = 0; i < blocking.keyBlock; ++i)
          key.push_back(minI(add(s0, add(col, idx(i))), sLast));
        return key;
      },
      [&](Value d, Value rowVector) { return vload(qT, {j, d, rowVector}); },
      [&](Value d, Value col, int64_t i, ArrayRef<Value> key) {
        return bcast(keyTile
                         ? load(keyTile, {add(col, idx(i)), d})
                         : load(op.getK(), at(batch, key[i], kvHead, d)));
      },
      [&](Value sum, Value k, Value q) { return fma(k, q, sum); },
      /*trimCausal=*/op.getCausal());
}

void SoftmaxReadEmitter::scoreBlocks(
    Value ncols, Value rowStart, Value steps,
    llvm::function_ref<SmallVector<Value>(Value)> perKeyBlock,
    llvm::function_ref<Value(Value, Value)> rowOperand,
    llvm::function_ref<Value(Value, Value, int64_t, ArrayRef<Value>)>
        keyOperand,
    llvm::function_ref<Value(Value, Value, Value)> madd, bool trimCausal) {
  int64_t keys = blocking.keyBlock, rowVecs = blocking.scoreRowVecs;
  Value kb = idx(keys);
  Value rvStep = idx(rowVecs * lanes);
  Value colsPadded = mul(ceilDiv(ncols, kb), kb);
  Value rowsV = mul(ceilDiv(rows, rvStep), rvStep);
  auto block = [&](Value col, Value rv) {
    SmallVector<Value> perKey = perKeyBlock(col);
    SmallVector<Value> sums = rankOneSums(
        steps, keys, rowVecs,
        [&](Value d, int64_t c) {
          return rowOperand(d, add(rv, idx(c * lanes)));
        },
        [&](Value d, int64_t i) { return keyOperand(d, col, i, perKey); },
        madd);
    for (int64_t i = 0; i < keys; ++i)
      for (int64_t c = 0; c < rowVecs; ++c)
        vstore(sums[i * rowVecs + c], scoresT,
               {add(col, idx(i)), add(rv, idx(c * lanes))});
  };
  loop(c0, colsPadded, kb, [&](Value col) {
    Value first = rowStart;
    if (trimCausal)
      first = arith::MaxSIOp::create(
          b, rowStart, minI(sub(add(keyStart, col), t0), rows));
    loop(floorTo(first, rvStep), rowsV, rvStep,
         [&](Value rv) { block(col, rv); });
  });
}

SmallVector<Value> SoftmaxReadEmitter::rankOneSums(
    Value steps, int64_t bcasts, int64_t vecs,
    llvm::function_ref<Value(Value, int64_t)> vecOperand,
    llvm::function_ref<Value(Value, int64_t)> bcastOperand,
    llvm::function_ref<Value(Value, Value, Value)> madd,
    llvm::function_ref<Value(Value, int64_t)> vecOperandLo) {
  SmallVector<Value> inits(bcasts * vecs, splat(0.0f));
  return loop(c0, steps, c1, inits, [&](Value s, ValueRange it) {
    // The vectors first, then each broadcast operand right before its row
    // of multiply-adds: one broadcast register live at a time.
    SmallVector<Value> vs, vsLo;
    for (int64_t k = 0; k < vecs; ++k) {
      vs.push_back(vecOperand(s, k));
      if (vecOperandLo)
        vsLo.push_back(vecOperandLo(s, k));
    }
    SmallVector<Value> next;
    for (int64_t i = 0; i < bcasts; ++i) {
      Value x = bcastOperand(s, i);
      for (int64_t k = 0; k < vecs; ++k) {
        Value sum = madd(it[i * vecs + k], x, vs[k]);
        next.push_back(vecOperandLo ? madd(sum, x, vsLo[k]) : sum);
      }
    }
    return next;
  });
}

void SoftmaxReadEmitter::emitOnlineSoftmax(Value j, Value s0, Value ncols,
                                    Value rowStart) {
  // Row statistics are vectors over rows: every reduction runs down the key
  // axis, element-wise, with no horizontal shuffles.
  auto vi32 = VectorType::get({lanes}, b.getI32Type());
  auto i32 = [&](Value index) {
    return arith::IndexCastOp::create(b, b.getI32Type(), index);
  };
  Value lane = arith::IndexCastOp::create(
      b, vi32, vector::StepOp::create(b, VectorType::get({lanes}, b.getIndexType())));
  Value rowsV = mul(ceilDiv(rows, cLanes), cLanes);
  loop(floorTo(rowStart, cLanes), rowsV, cLanes, [&](Value rv) {
    Value tRow = arith::AddIOp::create(
        b, lane, vector::BroadcastOp::create(b, vi32, i32(add(t0, rv))));
    auto visible = [&](Value col, bool causalCheck) -> Value {
      Value vis;
      if (causalCheck)
        vis = arith::CmpIOp::create(
            b, arith::CmpIPredicate::sge, tRow,
            vector::BroadcastOp::create(b, vi32, i32(add(s0, col))));
      if (op.getMask()) {
        Value keep = bcast(keyKept(col));
        vis = vis ? arith::AndIOp::create(b, vis, keep) : keep;
      }
      return vis;
    };
    // Causal: keys [0, split) are visible to every row of this vector, so
    // only keys [split, ncols) (the diagonal) need the per-element check.
    Value split = ncols;
    if (op.getCausal())
      split = arith::MaxSIOp::create(
          b, c0, minI(ncols, add(sub(add(t0, rv), s0), c1)));
    // Runs body over [0, split) without and [split, ncols) with the causal
    // check, threading one iteration value through both.
    auto twoPart = [&](Value init, auto body) {
      Value v = loop(c0, split, c1, {init}, [&](Value col, ValueRange it) {
        return SmallVector<Value>{body(col, it[0], false)};
      })[0];
      if (!op.getCausal())
        return v;
      return loop(split, ncols, c1, {v}, [&](Value col, ValueRange it) {
        return SmallVector<Value>{body(col, it[0], true)};
      })[0];
    };
    Value mOld = vload(rowMax, {j, rv});
    Value vNegInf = bcast(negInf);
    Value tileMax = twoPart(vNegInf, [&](Value col, Value m, bool check) {
      Value next = fmax(vload(scoresT, {col, rv}), m);
      if (Value vis = visible(col, check))
        next = select(vis, next, m);
      return next;
    });
    Value mNew = fmax(tileMax, mOld);
    Value empty = fcmp(arith::CmpFPredicate::OEQ, mNew, vNegInf);
    Value fresh = fcmp(arith::CmpFPredicate::OEQ, mOld, vNegInf);
    Value vScale = bcast(scale);
    // The rescale e^x (x = scale (m - m') <= 0) of the sums so far. Below
    // e^-80 it is taken as (e^x 2^24) * 2^-24: e^x itself would be flushed
    // to 0 below e^-88 (and subnormal below e^-87.3), dropping keys whose
    // weights e^x 2^24 the sums still hold as normal numbers, which carry
    // a share of Z where the new heaviest key's X is near e^-2cap (logits
    // 232 then 320, X = 1 then e^-86: 11 % of Z, spec_fuzz seed 5201).
    Value x = fmul(fsub(mOld, mNew), vScale);
    Value deep = fcmp(arith::CmpFPredicate::OLT, x, splat(-80.0f));
    Value a = select(fresh, splat(0.0f),
                     select(deep, weightExp(*this, x), readExp(*this, x)));
    a = select(empty, splat(1.0f), a);
    Value aLow = select(deep, splat(0x1p-24f), splat(1.0f));
    Value tileSum = twoPart(splat(0.0f), [&](Value col, Value sum, bool check) {
      Value p = contractedWeight(weightExp(
          *this, fmul(fsub(vload(scoresT, {col, rv}), mNew), vScale)));
      if (Value vis = visible(col, check))
        p = select(vis, p, splat(0.0f));
      vstore(p, scoresT, {col, rv});
      return fadd(sum, p);
    });
    vstore(mNew, rowMax, {j, rv});
    vstore(fma(fmul(a, vload(rowSum, {j, rv})), aLow, tileSum), rowSum,
           {j, rv});
    vstore(a, alpha, {rv});
    vstore(aLow, alphaLow, {rv});
  });
}

void SoftmaxReadEmitter::emitContraction(Value j, Value ncols, Value rowStart) {
  // Causal: a row block sums only the keys its last row sees. P is 0 for
  // the rest (the online softmax's check), and 0 * panel is 0 unless v is
  // NaN, which makes the shift M and so every output NaN anyway: the sums
  // keep their bits.
  auto visibleKeys = [&](Value r) {
    return minI(ncols, arith::MaxSIOp::create(
                           b, c0, sub(add(t0, add(r, cRB)), keyStart)));
  };
  accumulateBlocks(
      j, ncols, rowStart,
      [&](Value col, Value c) { return vload(panel, {col, c}); },
      [&](Value col, Value row) { return bcast(load(scoresT, {col, row})); },
      [&](Value sum, Value p, Value v) { return fma(p, v, sum); },
      op.getCausal() ? llvm::function_ref<Value(Value)>(visibleKeys)
                     : llvm::function_ref<Value(Value)>());
}

void SoftmaxReadEmitter::accumulateBlocks(
    Value j, Value steps, Value rowStart,
    llvm::function_ref<Value(Value, Value)> colOperand,
    llvm::function_ref<Value(Value, Value)> rowOperand,
    llvm::function_ref<Value(Value, Value, Value)> madd,
    llvm::function_ref<Value(Value)> rowSteps,
    llvm::function_ref<Value(Value, Value)> colOperandLo, Value loFrom) {
  int64_t rb = blocking.rowBlock, cbv = blocking.colBlock;
  Value cb = idx(cbv * lanes);
  loop(floorTo(rowStart, cRB), rowsPadded, cRB, [&](Value r) {
    SmallVector<Value> rowIdx, rowAlpha, rowAlphaLow;
    for (int64_t i = 0; i < rb; ++i) {
      rowIdx.push_back(add(r, idx(i)));
      rowAlpha.push_back(bcast(load(alpha, {rowIdx.back()})));
      rowAlphaLow.push_back(bcast(load(alphaLow, {rowIdx.back()})));
    }
    Value n = rowSteps ? rowSteps(r) : steps;
    auto columns = [&](Value c, bool withLo) {
      // Each key tile sums into fresh registers, added to the rescaled
      // accumulator once: rounding grows with the tile, not with T.
      auto lo = [&](Value s, int64_t k) {
        return colOperandLo(s, add(c, idx(k * lanes)));
      };
      SmallVector<Value> sums = rankOneSums(
          n, rb, cbv,
          [&](Value s, int64_t k) {
            return colOperand(s, add(c, idx(k * lanes)));
          },
          [&](Value s, int64_t i) { return rowOperand(s, rowIdx[i]); }, madd,
          withLo ? llvm::function_ref<Value(Value, int64_t)>(lo)
                 : llvm::function_ref<Value(Value, int64_t)>());
      for (int64_t i = 0; i < rb; ++i)
        for (int64_t k = 0; k < cbv; ++k) {
          SmallVector<Value> at = {j, rowIdx[i], add(c, idx(k * lanes))};
          sums[i * cbv + k] = fma(fmul(vload(acc, at), rowAlpha[i]),
                                  rowAlphaLow[i], sums[i * cbv + k]);
        }
      for (int64_t i = 0; i < rb; ++i)
        for (int64_t k = 0; k < cbv; ++k)
          vstore(sums[i * cbv + k], acc, {j, rowIdx[i], add(c, idx(k * lanes))});
    };
    if (!colOperandLo) {
      loop(c0, width, cb, [&](Value c) { columns(c, false); });
      return;
    }
    loop(c0, loFrom, cb, [&](Value c) { columns(c, false); });
    loop(loFrom, width, cb, [&](Value c) { columns(c, true); });
  });
}

void SoftmaxReadEmitter::emitEpilogue() {
  Value eps = cst(static_cast<float>(op.getEpsAttr().getValueAsDouble()));
  Value sqrtDv = sqrt(toFloat(dv));
  loop(c0, group, c1, [&](Value j) {
    Value h = add(mul(kvHead, group), j);
    Value tLast = sub(T, c1);
    loop(c0, rows, c1, [&](Value r) {
      Value t = add(t0, r);
      // Gate, lambda and out rows lie H*dv values apart (see packQuery).
      Value tAhead = minI(add(t, idx(kRowsAhead)), tLast);
      prefetchRow(op.getGate(), batch, tAhead, h, c0, dv);
      prefetchRow(op.getLam(), batch, tAhead, h, c0, dv);
      prefetchRow(op.getOut(), batch, tAhead, h, c0, dv, /*write=*/true);
      Value l = load(rowSum, {j, r});
      // A row with no visible key has l = 0 (its output is 0); a NaN score
      // makes l NaN, which must reach the output.
      Value has = fcmp(arith::CmpFPredicate::UNE, l, cst(0.0f));
      Value inv = bcast(select(has, fdiv(cst(1.0f), l), cst(0.0f)));
      Value vHas = bcast(has);
      // g+ = softplus(gate) + eps and its norm over the dv channels, scaled
      // (EmitterBuilder::gateNormDivisor/gateNormScale).
      Value gMaxV = loop(c0, dvp, cLanes, {splat(0.0f)}, [&](Value c, ValueRange it) {
        Value lanesLeft = mask(sub(dv, c));
        Value gl = vloadMasked(op.getGate(), at(batch, t, h, c), lanesLeft);
        Value gp = select(lanesLeft, fadd(softplus(gl, bcast(twenty)), bcast(eps)),
                          splat(0.0f));
        vstore(gp, gateBuf, {c});
        return SmallVector<Value>{fmax(gp, it[0])};
      })[0];
      Value gMax = gateNormDivisor(gMaxV);
      Value vgMax = bcast(gMax);
      // Padding lanes hold 0.
      Value sq = loop(c0, dvp, cLanes, {splat(0.0f)}, [&](Value c, ValueRange it) {
        Value u = fdiv(vload(gateBuf, {c}), vgMax);
        vstore(u, gateBuf, {c});
        return SmallVector<Value>{fma(u, u, it[0])};
      })[0];
      Value gScale = bcast(gateNormScale(sqrtDv, gMax, sq));
      loop(c0, dvp, cLanes, [&](Value c) {
        Value lanesLeft = mask(sub(dv, c));
        Value mu = fmul(vload(acc, {j, r, c}), inv);
        Value z = fmul(vload(acc, {j, r, add(dvp, c)}), inv);
        Value shift = vload(shiftBuf, {j, c});
        Value beta = vload(betaBuf, {j, c});
        // log Z: log1p of the stored X - 1 where the channel has offset 1
        // (narrow: Z >= 1/2; centred: Z >= e^-kCentreSpan), else log of Z,
        // with log Z = -inf for Z <= 0.
        Value narrow = fcmp(arith::CmpFPredicate::OGT, vload(offsetBuf, {j, c}),
                            splat(0.5f));
        Value positive = arith::OrIOp::create(
            b, narrow, fcmp(arith::CmpFPredicate::UGT, z, splat(0.0f)));
        // One log for both (log1pOrLog): bitwise the select of the two.
        Value logZ = select(positive, log1pOrLog(narrow, z, z), bcast(negInf));
        Value tinyTerm = fsub(splat(kLogTiny), shift);
        // fmax/fmin return their second operand for NaN: keep log Z there.
        Value hi = fmax(tinyTerm, logZ);
        Value lo = fmin(tinyTerm, logZ);
        Value lse = logAddExpSorted(*this, hi, lo);
        lse = select(positive, lse, tinyTerm);
        // + tiny: the floor where logAddExpSorted dropped it (kTiny).
        Value freeEnergy =
            fdiv(fadd(fadd(lse, shift), splat(cpu::kTiny)), beta);
        freeEnergy = select(vHas, freeEnergy, splat(0.0f));
        mu = select(vHas, mu, splat(0.0f));
        Value lamLogit = vloadMasked(op.getLam(), at(batch, t, h, c), lanesLeft);
        Value lambda = sigmoid(lamLogit);
        Value mix = fadd(fmul(fsub(splat(1.0f), lambda), mu),
                         fmul(lambda, freeEnergy));
        Value g = fmul(vload(gateBuf, {c}), gScale);
        vstoreMasked(fmul(g, mix), op.getOut(), at(batch, t, h, c), lanesLeft);
      });
    });
  });
}

Value mlir::fem::cpu::logAddExpSorted(EmitterBuilder &e, Value hi, Value lo) {
  Value floor = e.splat(kExpFloor);
  Value gap = e.fsub(lo, hi);
  Value far = vector::ReductionOp::create(
      e.b, vector::CombiningKind::AND,
      e.fcmp(arith::CmpFPredicate::OLT, gap, floor));
  return storage::ifValue(
      e.b, far, [&] { return hi; },
      [&] { return e.fadd(hi, e.log1p(e.exp(e.fmax(floor, gap)))); });
}

LogicalResult SoftmaxReadEmitter::checkTiles(TileReadOp op, Blocking blocking) {
  int64_t lanes = op.getTiles().getVec();
  int64_t quantum = blocking.colBlock * lanes;
  if (lanes == 0 || op.getTiles().getQ() % quantum != 0 ||
      op.getTiles().getK() % quantum != 0)
    return op.emitError() << "fem-lower-to-cpu: tiles " << op.getTiles()
                          << " need vec > 0, q a multiple of "
                          << blocking.colBlock << " * vec and k a multiple of "
                          << blocking.colBlock << " * vec";
  return success();
}

LogicalResult mlir::fem::cpu::lowerTileReadToCPU(TileReadOp op) {
  if (op.getKind() != PriorKind::softmax)
    return op.emitError() << "fem-lower-to-cpu: prior '"
                          << stringifyPriorKind(op.getKind())
                          << "' has no CPU lowering yet";
  for (Value v : {op.getQ(), op.getK(), op.getV(), op.getBetaRaw(),
                  op.getLam(), op.getGate(), op.getOut()})
    if (!cpu::storage::isSupported(cpu::storage::elementType(v)) ||
        !cast<MemRefType>(v.getType()).getLayout().isIdentity())
      return op.emitError() << "fem-lower-to-cpu: expects f32, f16 or bf16 "
                               "memrefs with the identity layout, found "
                            << v.getType();
  if (failed(cpu::verifyMaskBytes(op, op.getMask(), "fem-lower-to-cpu")))
    return failure();
  if (failed(SoftmaxReadEmitter::checkTiles(
          op, f32Blocking(op.getTiles().getVec()))))
    return failure();
  SoftmaxReadEmitter emitter(op, f32Blocking(op.getTiles().getVec()));
  return emitter.emit();
}
