//===- ReadSoftmaxAmx.cpp - the online-softmax read on AMX tiles ----------===//
//
// Part of the femc project.
//
// The bf16 softmax read of one workgroup (rows [t0, t0 + rows) of the g
// query heads of kv head `wy`, batch `wz`) with both contractions on Intel
// AMX (tdpbf16ps: bf16 products, f32 accumulation) and everything between
// them on 16-lane AVX-512 vectors. The algorithm is the f32 read's
// (ReadSoftmax.cpp, /work/shared/design/fused-read.md); what differs is the
// data layout the tiles need. With R = 16 tile rows and 32 bf16 per tile
// row (64 bytes):
//
//   qV[j]  Q^T of head j in the VNNI layout of an AMX B operand:
//          qV[j][d/2][2r + d%2] = q[t0 + r][d]; packed once per workgroup.
//   kBuf   the key tile's rows, kBuf[s][d] (an A operand), zero past dk.
//   S^T    = kBuf . qV: C tiles of 16 keys x 16 rows, so the query rows lie
//          on vector lanes and the online softmax reduces down the key axis
//          element-wise (no horizontal shuffles), as in the f32 read.
//   P^T    the probabilities rounded once to bf16, written as VNNI pairs of
//          keys: pV[s/2][2r + s%2] (a B operand); l sums the rounded P, so
//          numerator and denominator use the same weights and R(1) = 1.
//   panelT [clip(v) | X hi | X lo] of head j transposed, panelT[c][s] (an
//          A operand): the key tile's raw values are transposed once per
//          tile (16 x 16 shuffles), then clip/exp run with keys on lanes and
//          each channel's beta, bound and shift broadcast. X (X - 1 on
//          narrow and centred channels) is a pair of bf16, hi + lo.
//   acc^T  = alpha * acc^T + panelT . pV: C tiles of 16 channels x 16 rows,
//          rescaled per row (rows on lanes) before the tiles add P V; the
//          X channels take the hi and the lo products.
//
// The epilogue transposes acc^T back (rows x channels) and runs the log
// restore and the gate exactly as the f32 read does, rounding the output
// once to bf16. AMX tiles never live across a loop (the tile registers are
// configured by LLVM's tile-config passes per function): every contraction
// loads its accumulator, multiplies and stores it in one block.
//
// Numerics: q, k, v are bf16 already (clip(v) is exact in bf16); P is
// rounded to bf16 (8 significant bits) and X to a pair of bf16 (16 bits)
// before the products; every sum, the softmax state and the epilogue are
// f32. The tilt is centred as in the f32 read (ReadSoftmax.cpp's pre-pass:
// X - 1 around the values' mean where their span allows), because F =
// (log Z + M) / beta turns a relative error of Z into an absolute one of
// 1/beta times it: with X in one bf16, the max shift and l over the
// unrounded P, spec_fuzz draws failed the bf16 tolerance (seed 20261202
// index 228, 1.07x), as the AVX512-BF16 dot-product read did before it took
// the same three measures (ReadSoftmaxBf16.cpp). The outputs agree with the
// double reference to within the bf16 tolerance, 1e-2 of max|out|
// (docs/semantics.md).
//
//===----------------------------------------------------------------------===//
#include "passes/cpu/ReadSoftmaxAmx.h"
#include "passes/cpu/Builder.h"
#include "passes/cpu/ReadSoftmax.h"

#include "mlir/Dialect/AMX/AMXDialect.h"

#include <numeric>

using namespace mlir;
using namespace mlir::fem;
using namespace mlir::fem::cpu;

bool mlir::fem::cpu::targetHasFeature(Operation *op, StringRef feature) {
  auto module = op->getParentOfType<ModuleOp>();
  if (!module)
    return false;
  auto attr = module->getAttrOfType<StringAttr>(kTargetFeaturesAttr);
  if (!attr)
    return false;
  SmallVector<StringRef> list;
  attr.getValue().split(list, ',', -1, /*KeepEmpty=*/false);
  return llvm::is_contained(list, ("+" + feature).str());
}

bool mlir::fem::cpu::useAmxSoftmaxRead(TileReadOp op) {
  if (op.getKind() != PriorKind::softmax || op.getTiles().getVec() != 16)
    return false;
  if (!storage::elementType(op.getQ()).isBF16())
    return false;
  return targetHasFeature(op, "amx-tile") && targetHasFeature(op, "amx-bf16");
}

namespace {

/// AMX tile geometry: 16 rows of 64 bytes.
constexpr int64_t kTileRows = 16;
constexpr int64_t kTileBf16 = 32;
/// How far (in scaled-score units, e-folds) a tile's max may exceed the
/// running shift before the shift moves.
constexpr float kShiftSlack = 8.0f;
/// The fewest keys per key tile (tiles.k is rounded up to it).
constexpr int64_t kMinKeys = 128;

class AmxReadEmitter {
public:
  explicit AmxReadEmitter(TileReadOp op)
      : op(op), e(op, op.getLayout(), /*lanes=*/16),
        bq(op.getTiles().getQ()), bk(op.getTiles().getK()) {
    bf16 = e.b.getBF16Type();
    vb = VectorType::get({16}, bf16);
    aTile = amx::TileType::get({kTileRows, kTileBf16}, bf16);
    cTile = amx::TileType::get({kTileRows, kTileRows}, e.f32);
  }

  LogicalResult emit();

private:
  /// A 64-byte aligned scratch buffer of `type` elements (freed with the
  /// f32 scratch at the end of the workgroup).
  Value allocOf(Type type, ArrayRef<int64_t> shape, ValueRange dyn) {
    Value m = memref::AllocOp::create(e.b, MemRefType::get(shape, type), dyn,
                                      e.b.getI64IntegerAttr(64));
    e.scratch.push_back(m);
    return m;
  }
  /// 16 vectors of 16 floats transposed: out[c][r] = in[r][c]. Four rounds
  /// of two-source shuffles, each swapping the off-diagonal blocks of size
  /// h within every 2h x 2h block (64 vpermt2ps in all).
  SmallVector<Value> transpose16(ArrayRef<Value> in) {
    SmallVector<Value> r(in);
    for (int64_t h = 8; h >= 1; h /= 2) {
      SmallVector<Value> next(16);
      for (int64_t i = 0; i < 16; ++i) {
        if (i & h)
          continue;
        SmallVector<int64_t> lo(16), hi(16);
        for (int64_t p = 0; p < 16; ++p) {
          lo[p] = (p & h) ? 16 + p - h : p;
          hi[p] = (p & h) ? 16 + p : p + h;
        }
        next[i] = vector::ShuffleOp::create(e.b, r[i], r[i + h], lo);
        next[i + h] = vector::ShuffleOp::create(e.b, r[i], r[i + h], hi);
      }
      r = std::move(next);
    }
    return r;
  }
  /// f32 vector rounded to bf16 (round to nearest even; vcvtneps2bf16).
  Value toBf16(Value x) { return arith::TruncFOp::create(e.b, vb, x); }
  /// e^x for the probabilities and the tilted values, which are rounded to
  /// bf16 (8 bits) next: 2^n * 2^f with n = round(x log2 e), |f| <= 1/2 and
  /// 2^f by its degree-6 Taylor polynomial (relative error below 1.2e-7,
  /// under float32's own rounding of x log2 e). x < -87 gives 0; NaN stays
  /// NaN. Fifteen instructions where math.exp's expansion takes about 20.
  Value fastExp(Value x) {
    Value t = e.fmul(x, e.splat(1.44269504f));
    // n from t clamped to [-127, 127] (a NaN t gives -127: n stays a valid
    // integer and the NaN reaches the result through f).
    Value n = math::RoundEvenOp::create(
        e.b, e.fmin(e.fmax(t, e.splat(-127.0f)), e.splat(127.0f)));
    Value f = e.fsub(t, n);
    double c = 1.0;
    SmallVector<float, 7> coef;
    for (int k = 0; k <= 6; ++k) {
      coef.push_back(static_cast<float>(c));
      c *= 0.69314718055994531 / (k + 1);
    }
    Value p = e.splat(coef[6]);
    for (int k = 5; k >= 0; --k)
      p = e.fma(p, f, e.splat(coef[k]));
    auto vi32 = VectorType::get({16}, e.b.getI32Type());
    Value ni = arith::FPToSIOp::create(e.b, vi32, n);
    Value bits = arith::ShLIOp::create(
        e.b,
        arith::AddIOp::create(
            e.b, ni,
            arith::ConstantOp::create(
                e.b, vi32, DenseElementsAttr::get(vi32, APInt(32, 127)))),
        arith::ConstantOp::create(
            e.b, vi32, DenseElementsAttr::get(vi32, APInt(32, 23))));
    Value scaled = e.fmul(p, arith::BitcastOp::create(e.b, e.vf, bits));
    return e.select(e.fcmp(arith::CmpFPredicate::OLT, t, e.splat(-126.0f)),
                    e.splat(0.0f), scaled);
  }
  /// Two bf16 vectors interleaved lane by lane: the VNNI pair layout.
  Value interleave(Value x, Value y) {
    SmallVector<int64_t> m;
    for (int64_t p = 0; p < 16; ++p) {
      m.push_back(p);
      m.push_back(16 + p);
    }
    return vector::ShuffleOp::create(e.b, x, y, m);
  }
  Value tileLoad(amx::TileType type, Value m, ValueRange at) {
    return amx::TileLoadOp::create(e.b, type, m, at);
  }

  void emitPrePass();
  void emitKeyTile(Value kt);
  void emitScores(Value j);
  void emitOnlineSoftmax(Value j, Value s0);
  void emitPanel(Value j);
  void emitContraction(Value j);
  /// C[i][n] (i, n < 2; one each where twoM/twoN is false) = initC(i, n) +
  /// sum over `chunks` of loadA(i, c) . loadB(n, c), then storeC(i, n, C):
  /// 8 tiles at most, each loaded A and B tile used twice.
  void emitBlock2x2(bool twoM, bool twoN, int64_t chunks,
                    llvm::function_ref<Value(int64_t, int64_t)> loadA,
                    llvm::function_ref<Value(int64_t, int64_t)> loadB,
                    llvm::function_ref<Value(int64_t, int64_t)> initC,
                    llvm::function_ref<void(int64_t, int64_t, Value)> storeC);
  void emitEpilogue();

  TileReadOp op;
  EmitterBuilder e;
  int64_t bq, bk;
  int64_t bqPad = 0, bkPad = 0;
  Type bf16;
  VectorType vb;
  amx::TileType aTile, cTile;

  Value c0, c1, c16, T, S, dk, dv, dkPad, dvp, width, group, batch, kvHead, t0,
      rows, scale, negInf;
  // Per key tile.
  Value s0, ncols;
  // Scratch.
  Value qV, kBuf, scoresT, pV, vT, panelT, accT, accRow, rowMax, rowSum,
      alpha, betaBuf, boundBuf, vmaxBuf, shiftBuf, offsetBuf, colOk, gateBuf;
};

LogicalResult AmxReadEmitter::emit() {
  c0 = e.idx(0);
  c1 = e.idx(1);
  c16 = e.idx(16);
  bqPad = (bq + kTileRows - 1) / kTileRows * kTileRows;
  // Key tiles of at least kMinKeys: the accumulator (2*dv x Bq floats) is
  // read and written once per key tile, so short tiles pay for it in memory
  // traffic (measured: 128 keys ~15% faster than 64 at T = 4096).
  bkPad = (std::max(bk, kMinKeys) + kTileBf16 - 1) / kTileBf16 * kTileBf16;
  unsigned ta = timeAxis(op.getLayout()), ha = headAxis(op.getLayout());
  T = e.dim(op.getQ(), ta);
  S = e.dim(op.getK(), ta);
  Value H = e.dim(op.getQ(), ha);
  Value hkv = e.dim(op.getK(), ha);
  dk = e.dim(op.getQ(), 3);
  dv = e.dim(op.getV(), 3);
  dkPad = e.roundUp(dk, e.idx(kTileBf16));
  dvp = e.roundUp(dv, c16);
  width = e.mul(dvp, e.idx(2));
  group = e.divI(H, hkv);
  batch = op.getWgZ();
  kvHead = op.getWgY();
  // Query tiles run in reverse so that the longest causal rows start first.
  Value numQTiles = e.ceilDiv(T, e.idx(bq));
  t0 = e.mul(e.sub(e.sub(numQTiles, c1), op.getWgX()), e.idx(bq));
  rows = e.minI(e.idx(bq), e.sub(T, t0));
  negInf = e.cst(-std::numeric_limits<float>::infinity());
  if (auto s = op.getScaleAttr())
    scale = e.cst(static_cast<float>(s.getValueAsDouble()));
  else
    scale = e.fdiv(e.cst(1.0f), e.sqrt(e.toFloat(dk)));

  constexpr int64_t dyn = ShapedType::kDynamic;
  qV = allocOf(bf16, {dyn, dyn, 2 * bqPad}, {group, e.divI(dkPad, e.idx(2))});
  kBuf = allocOf(bf16, {bkPad, dyn}, {dkPad});
  scoresT = e.alloc({bkPad, bqPad}, {});
  pV = allocOf(bf16, {bkPad / 2, 2 * bqPad}, {});
  vT = e.alloc({dyn, bkPad}, {dvp});
  panelT = allocOf(bf16, {dyn, bkPad}, {e.mul(dvp, e.idx(3))});
  accT = e.alloc({dyn, dyn, bqPad}, {group, width});
  accRow = e.alloc({bqPad, dyn}, {width});
  rowMax = e.alloc({dyn, bqPad}, {group});
  rowSum = e.alloc({dyn, bqPad}, {group});
  alpha = e.alloc({bqPad}, {});
  betaBuf = e.alloc({dyn, dyn}, {group, dvp});
  boundBuf = e.alloc({dyn, dyn}, {group, dvp});
  vmaxBuf = e.alloc({dyn, dyn}, {group, dvp});
  shiftBuf = e.alloc({dyn, dyn}, {group, dvp});
  offsetBuf = e.alloc({dyn, dyn}, {group, dvp});
  colOk = e.alloc({bkPad}, {});
  gateBuf = e.alloc({dyn}, {dvp});

  emitPrePass();
  Value numKTiles = op.getCausal()
                        ? e.ceilDiv(e.minI(e.add(t0, rows), S), e.idx(bkPad))
                        : e.ceilDiv(S, e.idx(bkPad));
  e.loop(c0, numKTiles, c1, [&](Value kt) { emitKeyTile(kt); });
  emitEpilogue();
  e.freeScratch();
  op.erase();
  return success();
}

void AmxReadEmitter::emitPrePass() {
  Value eps = e.cst(static_cast<float>(op.getEpsAttr().getValueAsDouble()));
  Value cap = e.cst(static_cast<float>(op.getCapAttr().getValueAsDouble()));
  // Channels past dv of the panel stay 0 (finite) for every key tile.
  Value zeroB = arith::ConstantOp::create(
      e.b, vb, DenseElementsAttr::get(vb, e.b.getZeroAttr(bf16)));
  e.loop(c0, e.mul(dvp, e.idx(3)), c1, [&](Value c) {
    e.loop(c0, e.idx(bkPad), c16,
           [&](Value s) { vector::StoreOp::create(e.b, zeroB, panelT, {c, s}); });
  });
  // Per channel over the kept keys the tile's rows see (all S when not
  // causal, [0, t0 + rows) when causal): max, min and sum of the raw values
  // (the shift and the centred tilt, as in ReadSoftmax.cpp's pre-pass); a
  // NaN among any key's values reaches the channel. One pass over the raw
  // values serves the group.
  int64_t dvStatic = cast<MemRefType>(op.getV().getType()).getDimSize(3);
  bool wholeVectors = !ShapedType::isDynamic(dvStatic) && dvStatic % 16 == 0;
  Value seen = op.getCausal() ? e.minI(e.add(t0, rows), S) : S;
  Value vHi = e.alloc({ShapedType::kDynamic}, {dvp});
  Value vLo = e.alloc({ShapedType::kDynamic}, {dvp});
  Value vNan = e.alloc({ShapedType::kDynamic}, {dvp});
  Value vSum = e.alloc({ShapedType::kDynamic}, {dvp});
  e.loop(c0, dvp, c16, [&](Value c) {
    Value lanesLeft = e.mask(e.sub(dv, c));
    Value noNan = arith::ConstantOp::create(
        e.b, e.vi1, DenseElementsAttr::get(e.vi1, false));
    auto step = [&](Value s, ValueRange it, bool nanOnly) {
      Value v = wholeVectors
                    ? e.vload(op.getV(), e.at(batch, s, kvHead, c))
                    : e.vloadMasked(op.getV(), e.at(batch, s, kvHead, c),
                                    lanesLeft);
      Value hi = nanOnly ? it[0] : e.fmax(v, it[0]);
      Value lo = nanOnly ? it[1] : e.fmin(v, it[1]);
      Value sum = nanOnly ? it[3] : e.fadd(v, it[3]);
      Value nan = arith::OrIOp::create(
          e.b, it[2], e.fcmp(arith::CmpFPredicate::UNO, v, v));
      if (Value keyMask = op.getMask()) {
        Value keep = e.maskKeeps(keyMask, batch, s);
        hi = e.select(keep, hi, it[0]);
        lo = e.select(keep, lo, it[1]);
        nan = e.select(keep, nan, it[2]);
        sum = e.select(keep, sum, it[3]);
      }
      return SmallVector<Value>{hi, lo, nan, sum};
    };
    SmallVector<Value> red = e.loop(
        c0, seen, c1,
        {e.bcast(negInf), e.bcast(e.cst(INFINITY)), noNan, e.splat(0.0f)},
        [&](Value s, ValueRange it) { return step(s, it, false); });
    if (op.getCausal())
      red = e.loop(seen, S, c1, red,
                   [&](Value s, ValueRange it) { return step(s, it, true); });
    e.vstore(red[0], vHi, {c});
    e.vstore(red[1], vLo, {c});
    e.vstore(e.select(red[2], e.splat(NAN), e.splat(0.0f)), vNan, {c});
    e.vstore(red[3], vSum, {c});
  });
  // The number of kept keys the rows see, for the centre's mean.
  Value kept = e.keptKeys(op.getMask(), batch, seen);
  e.loop(c0, group, c1, [&](Value j) {
    Value h = e.add(e.mul(kvHead, group), j);
    e.loop(c0, dvp, c16, [&](Value c) {
      Value lanesLeft = e.mask(e.sub(dv, c));
      Value raw = e.vloadMasked(op.getBetaRaw(), {e.add(e.mul(h, dv), c)},
                                lanesLeft);
      Value beta = e.fadd(e.softplus(raw), e.bcast(eps));
      Value bound = e.fdiv(e.bcast(cap), beta);
      // Narrow channels (span <= ln 2) and centred ones store X - 1 (the
      // shift near the values' mean, as the f32 read): rounded to bf16,
      // X - 1 around the mean errs relative to the small terms of a row's
      // bulk, where X = e^(beta V~ - M) of one sign left every term off by
      // its share of ~1 (F = (log Z + M) / beta turns Z's relative error
      // into an absolute one).
      auto [vShift, offset] = softmaxTiltShift(
          e, e.vload(vHi, {c}), e.vload(vLo, {c}), e.vload(vSum, {c}), kept,
          e.vload(vNan, {c}), beta, bound);
      e.vstore(beta, betaBuf, {j, c});
      e.vstore(bound, boundBuf, {j, c});
      e.vstore(vShift, vmaxBuf, {j, c});
      e.vstore(e.fmul(beta, vShift), shiftBuf, {j, c});
      e.vstore(e.select(offset, e.splat(1.0f), e.splat(0.0f)), offsetBuf,
               {j, c});
    });
    // Q^T in VNNI pairs, raw bf16 (the scale multiplies score differences):
    // a pair of dims is one 32-bit unit, so 16 rows x 16 pairs transpose as
    // 16 x 16 floats. Rows past the end repeat the last row, dims past dk
    // are 0.
    auto vb32 = VectorType::get({32}, bf16);
    Value zero32 = arith::ConstantOp::create(
        e.b, vb32, DenseElementsAttr::get(vb32, e.b.getZeroAttr(bf16)));
    auto vmask32 = VectorType::get({32}, e.b.getI1Type());
    e.loop(c0, e.idx(bqPad), c16, [&](Value rb) {
      e.loop(c0, dkPad, e.idx(kTileBf16), [&](Value d) {
        Value dimsLeft = vector::CreateMaskOp::create(
            e.b, vmask32, ValueRange{e.sub(dk, d)});
        SmallVector<Value> in;
        for (int64_t i = 0; i < 16; ++i) {
          Value t = e.minI(e.add(t0, e.add(rb, e.idx(i))), e.sub(T, c1));
          Value x = vector::MaskedLoadOp::create(
              e.b, vb32, op.getQ(), ValueRange(e.at(batch, t, h, d)), dimsLeft,
              zero32);
          in.push_back(vector::BitCastOp::create(e.b, e.vf, x));
        }
        SmallVector<Value> pairs = transpose16(in);
        Value pair0 = e.divI(d, e.idx(2));
        for (int64_t i = 0; i < 16; ++i)
          vector::StoreOp::create(
              e.b, vector::BitCastOp::create(e.b, vb32, pairs[i]), qV,
              ValueRange{j, e.add(pair0, e.idx(i)), e.mul(rb, e.idx(2))});
      });
    });
    e.loop(c0, e.idx(bqPad), c16, [&](Value r) {
      e.vstore(e.bcast(negInf), rowMax, {j, r});
      e.vstore(e.splat(0.0f), rowSum, {j, r});
      e.loop(c0, width, c1,
             [&](Value c) { e.vstore(e.splat(0.0f), accT, {j, c, r}); });
    });
  });
}

void AmxReadEmitter::emitKeyTile(Value kt) {
  s0 = e.mul(kt, e.idx(bkPad));
  ncols = e.minI(e.idx(bkPad), e.sub(S, s0));
  // Column mask: 1 for keys that exist and are not masked out.
  e.loop(c0, e.idx(bkPad), c16, [&](Value cc) {
    Value ok = e.mask(e.sub(ncols, cc));
    if (Value keyMask = op.getMask()) {
      auto vi8 = VectorType::get({16}, e.b.getI8Type());
      Value zero8 = arith::ConstantOp::create(
          e.b, vi8, DenseElementsAttr::get(vi8, e.b.getI8IntegerAttr(0)));
      Value bytes = vector::MaskedLoadOp::create(
          e.b, vi8, keyMask, ValueRange{batch, e.add(s0, cc)}, ok, zero8);
      ok = arith::AndIOp::create(
          e.b, ok,
          arith::CmpIOp::create(e.b, arith::CmpIPredicate::ne, bytes, zero8));
    }
    e.vstore(e.select(ok, e.splat(1.0f), e.splat(0.0f)), colOk, {cc});
  });
  // Key rows as bf16, zero past dk and past the last key.
  Value zeroB = arith::ConstantOp::create(
      e.b, vb, DenseElementsAttr::get(vb, e.b.getZeroAttr(bf16)));
  e.loop(c0, e.idx(bkPad), c1, [&](Value col) {
    Value there = arith::CmpIOp::create(e.b, arith::CmpIPredicate::slt, col, ncols);
    Value key = e.minI(e.add(s0, col), e.sub(S, c1));
    e.loop(c0, dkPad, c16, [&](Value d) {
      Value m = arith::AndIOp::create(e.b, e.mask(e.sub(dk, d)), e.bcast(there));
      Value x = vector::MaskedLoadOp::create(
          e.b, vb, op.getK(), ValueRange(e.at(batch, key, kvHead, d)), m, zeroB);
      vector::StoreOp::create(e.b, x, kBuf, ValueRange{col, d});
    });
  });
  // The raw values transposed (channels x keys), 0 for keys not kept.
  e.loop(c0, dvp, c16, [&](Value c) {
    Value lanesLeft = e.mask(e.sub(dv, c));
    e.loop(c0, e.idx(bkPad), c16, [&](Value sb) {
      SmallVector<Value> rowsIn;
      for (int64_t i = 0; i < 16; ++i) {
        Value col = e.add(sb, e.idx(i));
        Value key = e.minI(e.add(s0, col), e.sub(S, c1));
        Value v = e.vloadMasked(op.getV(), e.at(batch, key, kvHead, c), lanesLeft);
        Value keep = e.fcmp(arith::CmpFPredicate::OGT,
                            memref::LoadOp::create(e.b, colOk, ValueRange{col}),
                            e.cst(0.5f));
        rowsIn.push_back(e.select(keep, v, e.splat(0.0f)));
      }
      SmallVector<Value> cols = transpose16(rowsIn);
      for (int64_t i = 0; i < 16; ++i)
        e.vstore(cols[i], vT, {e.add(c, e.idx(i)), sb});
    });
  });
  e.loop(c0, group, c1, [&](Value j) {
    emitScores(j);
    emitOnlineSoftmax(j, s0);
    emitPanel(j);
    emitContraction(j);
  });
}

void AmxReadEmitter::emitScores(Value j) {
  // S^T block (16 keys x 16 rows) = sum over 32-dim chunks of kBuf . qV.
  auto qMemType = cast<MemRefType>(op.getQ().getType());
  int64_t dkStatic = qMemType.getDimSize(3);
  if (ShapedType::isDynamic(dkStatic)) {
    // dk known at run time only: accumulate in memory, one chunk at a time.
    e.loop(c0, e.idx(bkPad), c16, [&](Value kb) {
      e.loop(c0, e.idx(bqPad), c16, [&](Value rb) {
        Value rbPairs = e.mul(rb, e.idx(2));
        amx::TileStoreOp::create(e.b, scoresT, ValueRange{kb, rb},
                                 amx::TileZeroOp::create(e.b, cTile));
        e.loop(c0, dkPad, e.idx(kTileBf16), [&](Value d) {
          Value acc = tileLoad(cTile, scoresT, {kb, rb});
          Value a = tileLoad(aTile, kBuf, {kb, d});
          Value bt = tileLoad(aTile, qV, {j, e.divI(d, e.idx(2)), rbPairs});
          acc = amx::TileMulFOp::create(e.b, cTile, a, bt, acc);
          amx::TileStoreOp::create(e.b, scoresT, ValueRange{kb, rb}, acc);
        });
      });
    });
    return;
  }
  // dk known: 2 x 2 blocks of 16 keys x 16 rows, so each A and B tile
  // feeds two tdpbf16ps (AMX tiles are not renamed: reloading the tile a
  // product is still reading waits for it).
  int64_t chunks = (dkStatic + kTileBf16 - 1) / kTileBf16;
  for (int64_t kb = 0; kb < bkPad; kb += 2 * kTileRows)
    for (int64_t rb = 0; rb < bqPad; rb += 2 * kTileRows)
      emitBlock2x2(
          kb + kTileRows < bkPad, rb + kTileRows < bqPad, chunks,
          [&](int64_t i, int64_t k) {
            return tileLoad(aTile, kBuf,
                            {e.idx(kb + i * kTileRows), e.idx(k * kTileBf16)});
          },
          [&](int64_t i, int64_t k) {
            return tileLoad(aTile, qV,
                            {j, e.idx(k * kTileBf16 / 2),
                             e.idx(2 * (rb + i * kTileRows))});
          },
          [&](int64_t, int64_t) -> Value {
            return amx::TileZeroOp::create(e.b, cTile);
          },
          [&](int64_t i, int64_t n, Value acc) {
            amx::TileStoreOp::create(
                e.b, scoresT,
                ValueRange{e.idx(kb + i * kTileRows), e.idx(rb + n * kTileRows)},
                acc);
          });
}

void AmxReadEmitter::emitBlock2x2(
    bool twoM, bool twoN, int64_t chunks,
    llvm::function_ref<Value(int64_t, int64_t)> loadA,
    llvm::function_ref<Value(int64_t, int64_t)> loadB,
    llvm::function_ref<Value(int64_t, int64_t)> initC,
    llvm::function_ref<void(int64_t, int64_t, Value)> storeC) {
  int64_t m = twoM ? 2 : 1, n = twoN ? 2 : 1;
  SmallVector<Value> acc;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t k = 0; k < n; ++k)
      acc.push_back(initC(i, k));
  for (int64_t c = 0; c < chunks; ++c) {
    SmallVector<Value> a, bt;
    for (int64_t i = 0; i < m; ++i)
      a.push_back(loadA(i, c));
    for (int64_t k = 0; k < n; ++k)
      bt.push_back(loadB(k, c));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t k = 0; k < n; ++k)
        acc[i * n + k] =
            amx::TileMulFOp::create(e.b, cTile, a[i], bt[k], acc[i * n + k]);
  }
  for (int64_t i = 0; i < m; ++i)
    for (int64_t k = 0; k < n; ++k)
      storeC(i, k, acc[i * n + k]);
}

void AmxReadEmitter::emitOnlineSoftmax(Value j, Value s0) {
  auto vi32 = VectorType::get({16}, e.b.getI32Type());
  auto i32 = [&](Value index) {
    return arith::IndexCastOp::create(e.b, e.b.getI32Type(), index);
  };
  Value lane = arith::IndexCastOp::create(
      e.b, vi32,
      vector::StepOp::create(e.b, VectorType::get({16}, e.b.getIndexType())));
  e.loop(c0, e.idx(bqPad), c16, [&](Value rv) {
    Value tRow = arith::AddIOp::create(
        e.b, lane, vector::BroadcastOp::create(e.b, vi32, i32(e.add(t0, rv))));
    // One row vector; `checked` adds the per-key visibility (mask, keys past
    // the end, causal diagonal), which most tiles do not need.
    auto rowVector = [&](bool checked) {
      // Key `col` visible to the rows of this vector: kept, and (causal)
      // not after the row.
      auto visible = [&](Value col) -> Value {
        if (!checked)
          return Value();
        Value vis = e.bcast(e.fcmp(
            arith::CmpFPredicate::OGT,
            memref::LoadOp::create(e.b, colOk, ValueRange{col}), e.cst(0.5f)));
        if (op.getCausal())
          vis = arith::AndIOp::create(
              e.b, vis,
              arith::CmpIOp::create(
                  e.b, arith::CmpIPredicate::sge, tRow,
                  vector::BroadcastOp::create(e.b, vi32, i32(e.add(s0, col)))));
        return vis;
      };
      Value mOld = e.vload(rowMax, {j, rv});
      Value vNegInf = e.bcast(negInf);
      Value tileMax =
          e.loop(c0, ncols, c1, {vNegInf}, [&](Value col, ValueRange it) {
            Value next = e.fmax(e.vload(scoresT, {col, rv}), it[0]);
            if (Value vis = visible(col))
              next = e.select(vis, next, it[0]);
            return SmallVector<Value>{next};
          })[0];
      // The shift m moves only when the tile's max exceeds it by more than
      // kShiftSlack (in units of the scaled score): P stays below
      // e^kShiftSlack, exact in f32 and bf16 alike, and most tiles leave
      // every row's alpha at exactly 1, so the contraction skips the
      // rescale of the accumulator (as FlashAttention-3 does).
      Value vScale = e.bcast(scale);
      Value fresh = e.fcmp(arith::CmpFPredicate::OEQ, mOld, vNegInf);
      Value mMax = e.fmax(tileMax, mOld);
      Value grows = arith::OrIOp::create(
          e.b, fresh,
          e.fcmp(arith::CmpFPredicate::OGT, e.fmul(e.fsub(mMax, mOld), vScale),
                 e.splat(kShiftSlack)));
      Value mNew = e.select(grows, mMax, mOld);
      Value empty = e.fcmp(arith::CmpFPredicate::OEQ, mNew, vNegInf);
      Value same = e.fcmp(arith::CmpFPredicate::OEQ, mNew, mOld);
      Value a = e.select(fresh, e.splat(0.0f),
                         e.exp(e.fmul(e.fsub(mOld, mNew), vScale)));
      a = e.select(arith::OrIOp::create(e.b, empty, same), e.splat(1.0f), a);
      // P for every key of the tile (0 where not visible, past the last key
      // included: the contraction runs over the whole tile), rounded to
      // bf16 once for the product (P <= e^kShiftSlack); l sums the rounded
      // values, so that numerator and denominator weigh the keys alike and
      // R(1) = 1 (with l over the unrounded P, Z = l + R(X - 1) carried the
      // rounding's 2^-9 of l, which F divides by beta). e^((s - m) * scale):
      // the scale multiplies differences, so no logit overflows for any
      // float32 scale.
      Value tileSum = e.loop(
          c0, e.idx(bkPad / 2), c1, {e.splat(0.0f)},
          [&](Value cp, ValueRange it) {
            Value sum = it[0];
            SmallVector<Value, 2> half;
            for (int64_t i = 0; i < 2; ++i) {
              Value col = e.add(e.mul(cp, e.idx(2)), e.idx(i));
              Value p = fastExp(
                  e.fmul(e.fsub(e.vload(scoresT, {col, rv}), mNew), vScale));
              if (Value vis = visible(col))
                p = e.select(vis, p, e.splat(0.0f));
              Value rounded = toBf16(p);
              sum = e.fadd(sum, arith::ExtFOp::create(e.b, e.vf, rounded));
              half.push_back(rounded);
            }
            vector::StoreOp::create(e.b, interleave(half[0], half[1]), pV,
                                    ValueRange{cp, e.mul(rv, e.idx(2))});
            return SmallVector<Value>{sum};
          })[0];
      e.vstore(mNew, rowMax, {j, rv});
      e.vstore(e.fadd(e.fmul(a, e.vload(rowSum, {j, rv})), tileSum), rowSum,
               {j, rv});
      e.vstore(a, alpha, {rv});
    };
    // Every key of the tile visible to every row of the vector: a whole
    // tile, no mask, and (causal) its last key at or before the first row.
    Value whole = arith::CmpIOp::create(e.b, arith::CmpIPredicate::eq, ncols,
                                        e.idx(bkPad));
    if (op.getCausal())
      whole = arith::AndIOp::create(
          e.b, whole,
          arith::CmpIOp::create(e.b, arith::CmpIPredicate::sle,
                                e.add(s0, e.idx(bkPad - 1)), e.add(t0, rv)));
    if (op.getMask()) {
      rowVector(true);
      return;
    }
    scf::IfOp::create(
        e.b, whole,
        [&](OpBuilder &nb, Location) {
          OpBuilder::InsertionGuard guard(e.b);
          e.b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          rowVector(false);
          scf::YieldOp::create(e.b);
        },
        [&](OpBuilder &nb, Location) {
          OpBuilder::InsertionGuard guard(e.b);
          e.b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          rowVector(true);
          scf::YieldOp::create(e.b);
        });
  });
}

void AmxReadEmitter::emitPanel(Value j) {
  // panelT[c][s] = clip(v), panelT[dvp + c][s] and panelT[2 dvp + c][s] =
  // X (or X - 1 on narrow and centred channels) as a pair of bf16, hi + lo
  // (16 significant bits), keys on lanes, 0 for keys not kept.
  e.loop(c0, dv, c1, [&](Value c) {
    Value beta = e.bcast(memref::LoadOp::create(e.b, betaBuf, ValueRange{j, c}));
    Value bound = e.bcast(memref::LoadOp::create(e.b, boundBuf, ValueRange{j, c}));
    Value vmax = e.bcast(memref::LoadOp::create(e.b, vmaxBuf, ValueRange{j, c}));
    Value offset = e.fcmp(arith::CmpFPredicate::OGT,
                          memref::LoadOp::create(e.b, offsetBuf, ValueRange{j, c}),
                          e.cst(0.5f));
    e.loop(c0, e.idx(bkPad), c16, [&](Value s) {
      Value keep = e.fcmp(arith::CmpFPredicate::OGT, e.vload(colOk, {s}),
                          e.splat(0.5f));
      Value clipped = e.clamp(e.vload(vT, {c, s}), e.neg(bound), bound);
      Value z = e.fmul(beta, e.fsub(clipped, vmax));
      // X - 1 on offset channels (EmitterBuilder::offsetTilt: the expm1
      // polynomial where |z| <= ln 2), e^z elsewhere; the channel decides,
      // so only one form is computed.
      auto ifOp = scf::IfOp::create(
          e.b, offset,
          [&](OpBuilder &nb, Location) {
            OpBuilder::InsertionGuard guard(e.b);
            e.b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
            scf::YieldOp::create(
                e.b, ValueRange{e.offsetTilt(z, fastExp(z), e.splat(1.0f))});
          },
          [&](OpBuilder &nb, Location) {
            OpBuilder::InsertionGuard guard(e.b);
            e.b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
            scf::YieldOp::create(e.b, ValueRange{fastExp(z)});
          });
      Value tilted = ifOp.getResult(0);
      clipped = e.select(keep, clipped, e.splat(0.0f));
      tilted = e.select(keep, tilted, e.splat(0.0f));
      Value hi = toBf16(tilted);
      Value hiF = arith::ExtFOp::create(e.b, e.vf, hi);
      // The rest, exact in f32; 0 where hi is not finite (no inf - inf).
      Value finite = e.fcmp(arith::CmpFPredicate::OLT,
                            math::AbsFOp::create(e.b, hiF), e.splat(INFINITY));
      Value lo = toBf16(e.select(finite, e.fsub(tilted, hiF), e.splat(0.0f)));
      vector::StoreOp::create(e.b, toBf16(clipped), panelT, ValueRange{c, s});
      vector::StoreOp::create(e.b, hi, panelT, ValueRange{e.add(dvp, c), s});
      vector::StoreOp::create(e.b, lo, panelT,
                              ValueRange{e.add(e.mul(dvp, e.idx(2)), c), s});
    });
  });
}

void AmxReadEmitter::emitContraction(Value j) {
  // acc^T = alpha * acc^T (rows on lanes), then += panelT . pV per block of
  // 16 channels x 16 rows over the tile's key pairs.
  e.loop(c0, e.idx(bqPad), c16, [&](Value rv) {
    Value a = e.vload(alpha, {rv});
    Value moved = vector::ReductionOp::create(
        e.b, vector::CombiningKind::OR,
        e.fcmp(arith::CmpFPredicate::UNE, a, e.splat(1.0f)));
    e.when(moved, [&] {
      e.loop(c0, width, c1, [&](Value c) {
        e.vstore(e.fmul(e.vload(accT, {j, c, rv}), a), accT, {j, c, rv});
      });
    });
  });
  // 2 x 2 blocks of 16 channels x 16 rows over the tile's key pairs: the
  // clip(v) half over its key chunks, the X half over its hi chunks and
  // then its lo chunks into the same accumulators. dvp is a multiple of
  // 16: pairs of channel tiles, then a single one where dvp % 32 = 16.
  int64_t kChunks = bkPad / kTileBf16;
  auto half = [&](Value accBase, bool tilt) {
    auto blocks = [&](Value cb, bool twoM) {
      for (int64_t rb = 0; rb < bqPad; rb += 2 * kTileRows) {
        auto channel = [&](int64_t i) {
          return e.add(cb, e.idx(i * kTileRows));
        };
        emitBlock2x2(
            twoM, rb + kTileRows < bqPad, tilt ? 2 * kChunks : kChunks,
            [&](int64_t i, int64_t k) {
              // X's hi rows start at dvp, its lo rows at 2 dvp.
              Value base = tilt ? e.mul(dvp, e.idx(k < kChunks ? 1 : 2)) : c0;
              return tileLoad(aTile, panelT,
                              {e.add(base, channel(i)),
                               e.idx((k % kChunks) * kTileBf16)});
            },
            [&](int64_t i, int64_t k) {
              return tileLoad(aTile, pV,
                              {e.idx((k % kChunks) * kTileBf16 / 2),
                               e.idx(2 * (rb + i * kTileRows))});
            },
            [&](int64_t i, int64_t n) {
              return tileLoad(cTile, accT,
                              {j, e.add(accBase, channel(i)),
                               e.idx(rb + n * kTileRows)});
            },
            [&](int64_t i, int64_t n, Value acc) {
              amx::TileStoreOp::create(
                  e.b, accT,
                  ValueRange{j, e.add(accBase, channel(i)),
                             e.idx(rb + n * kTileRows)},
                  acc);
            });
      }
    };
    Value pairsEnd = e.sub(dvp, e.remI(dvp, e.idx(2 * kTileRows)));
    e.loop(c0, pairsEnd, e.idx(2 * kTileRows),
           [&](Value cb) { blocks(cb, true); });
    e.when(arith::CmpIOp::create(e.b, arith::CmpIPredicate::slt, pairsEnd, dvp),
           [&] { blocks(pairsEnd, false); });
  };
  half(c0, false);
  half(dvp, true);
}

void AmxReadEmitter::emitEpilogue() {
  Value eps = e.cst(static_cast<float>(op.getEpsAttr().getValueAsDouble()));
  Value sqrtDv = e.sqrt(e.toFloat(dv));
  e.loop(c0, group, c1, [&](Value j) {
    Value h = e.add(e.mul(kvHead, group), j);
    // acc^T back to rows x channels.
    e.loop(c0, width, c16, [&](Value cb) {
      e.loop(c0, e.idx(bqPad), c16, [&](Value rb) {
        SmallVector<Value> in;
        for (int64_t i = 0; i < 16; ++i)
          in.push_back(e.vload(accT, {j, e.add(cb, e.idx(i)), rb}));
        SmallVector<Value> out = transpose16(in);
        for (int64_t i = 0; i < 16; ++i)
          e.vstore(out[i], accRow, {e.add(rb, e.idx(i)), cb});
      });
    });
    e.loop(c0, rows, c1, [&](Value r) {
      Value t = e.add(t0, r);
      Value l = memref::LoadOp::create(e.b, rowSum, ValueRange{j, r});
      // No visible key: l = 0 and the output is 0; a NaN l reaches it.
      Value has = e.fcmp(arith::CmpFPredicate::UNE, l, e.cst(0.0f));
      Value inv = e.bcast(e.select(has, e.fdiv(e.cst(1.0f), l), e.cst(0.0f)));
      Value vHas = e.bcast(has);
      // g+ and its norm over dv, scaled by max g+ (see ReadSoftmax.cpp).
      Value gMaxV = e.loop(c0, dvp, c16, {e.splat(0.0f)}, [&](Value c, ValueRange it) {
        Value lanesLeft = e.mask(e.sub(dv, c));
        Value gl = e.vloadMasked(op.getGate(), e.at(batch, t, h, c), lanesLeft);
        Value gp = e.select(lanesLeft, e.fadd(e.softplus(gl), e.bcast(eps)),
                            e.splat(0.0f));
        e.vstore(gp, gateBuf, {c});
        return SmallVector<Value>{e.fmax(gp, it[0])};
      })[0];
      Value gMax = vector::ReductionOp::create(
          e.b, vector::CombiningKind::MAXNUMF, gMaxV);
      gMax = e.select(e.fcmp(arith::CmpFPredicate::OEQ, gMax, e.cst(INFINITY)),
                      e.cst(1.0f), gMax);
      Value vgMax = e.bcast(gMax);
      Value sq = e.loop(c0, dvp, c16, {e.splat(0.0f)}, [&](Value c, ValueRange it) {
        Value u = e.fdiv(e.vload(gateBuf, {c}), vgMax);
        e.vstore(u, gateBuf, {c});
        return SmallVector<Value>{e.fma(u, u, it[0])};
      })[0];
      Value norm = e.sqrt(
          vector::ReductionOp::create(e.b, vector::CombiningKind::ADD, sq));
      Value gScale =
          e.bcast(e.fdiv(sqrtDv, e.fmax(e.fdiv(e.cst(1e-5f), gMax), norm)));
      e.loop(c0, dvp, c16, [&](Value c) {
        Value lanesLeft = e.mask(e.sub(dv, c));
        Value mu = e.fmul(e.vload(accRow, {r, c}), inv);
        Value z = e.fmul(e.vload(accRow, {r, e.add(dvp, c)}), inv);
        Value shift = e.vload(shiftBuf, {j, c});
        Value beta = e.vload(betaBuf, {j, c});
        // Offset channels (narrow, centred) hold R(X - 1): Z = 1 + z.
        Value offset = e.fcmp(arith::CmpFPredicate::OGT,
                              e.vload(offsetBuf, {j, c}), e.splat(0.5f));
        Value positive = arith::OrIOp::create(
            e.b, offset, e.fcmp(arith::CmpFPredicate::UGT, z, e.splat(0.0f)));
        Value logZ = e.log1pOrLog(offset, z, z);
        logZ = e.select(positive, logZ, e.bcast(negInf));
        Value tinyTerm = e.fsub(e.splat(kLogTiny), shift);
        Value hi = e.fmax(tinyTerm, logZ);
        Value lo = e.fmin(tinyTerm, logZ);
        Value lse = logAddExpSorted(e, hi, lo);
        lse = e.select(positive, lse, tinyTerm);
        // + tiny: the floor where logAddExpSorted dropped it (kTiny).
        Value freeEnergy =
            e.fdiv(e.fadd(e.fadd(lse, shift), e.splat(kTiny)), beta);
        freeEnergy = e.select(vHas, freeEnergy, e.splat(0.0f));
        mu = e.select(vHas, mu, e.splat(0.0f));
        Value lambda = e.sigmoid(
            e.vloadMasked(op.getLam(), e.at(batch, t, h, c), lanesLeft));
        Value mix = e.fadd(e.fmul(e.fsub(e.splat(1.0f), lambda), mu),
                           e.fmul(lambda, freeEnergy));
        Value g = e.fmul(e.vload(gateBuf, {c}), gScale);
        e.vstoreMasked(e.fmul(g, mix), op.getOut(), e.at(batch, t, h, c),
                       lanesLeft);
      });
    });
  });
}

} // namespace

LogicalResult mlir::fem::cpu::verifyBf16ReadOperands(TileReadOp op,
                                                     StringRef read) {
  for (Value v : {op.getQ(), op.getK(), op.getV(), op.getBetaRaw(),
                  op.getLam(), op.getGate(), op.getOut()})
    if (!storage::elementType(v).isBF16() ||
        !cast<MemRefType>(v.getType()).getLayout().isIdentity())
      return op.emitError() << "fem-lower-to-cpu: " << read
                            << " expects bf16 memrefs with the identity "
                               "layout, found "
                            << v.getType();
  return verifyMaskBytes(op, op.getMask(), "fem-lower-to-cpu");
}

LogicalResult mlir::fem::cpu::lowerTileReadToAmx(TileReadOp op) {
  if (failed(verifyBf16ReadOperands(op, "the AMX read")))
    return failure();
  if (op.getTiles().getQ() <= 0 || op.getTiles().getK() <= 0)
    return op.emitError() << "fem-lower-to-cpu: tiles " << op.getTiles()
                          << " need q > 0 and k > 0";
  AmxReadEmitter emitter(op);
  return emitter.emit();
}
