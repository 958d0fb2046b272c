//===- ReadSoftmax.h - the online-softmax read on vector registers -*- C++ -*-===//
//
// Part of the femc project.
//
// The emitter of the online-softmax read (ReadSoftmax.cpp) as a class whose
// operand layouts and two contractions are hooks: the f32 read (FMAs on
// f32 operands) is the base class, and the bf16 read on AVX512-BF16 dot
// products (ReadSoftmaxBf16.cpp) overrides the packing of q, k and the
// value panel, the scores and the panel contraction. Both share the
// pre-pass (beta, the clip bound, the shift M), the column mask, the online
// softmax (rows on vector lanes) and the epilogue (log restore and gate).
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_PASSES_CPU_READSOFTMAX_H
#define FEMC_PASSES_CPU_READSOFTMAX_H

#include "passes/cpu/Builder.h"

#include <utility>

namespace mlir::fem::cpu {

class SoftmaxReadEmitter : public EmitterBuilder {
public:
  /// Register blocking: the value contraction takes rowBlock query rows x
  /// colBlock vectors of the 2*dvp accumulator width, the scores keyBlock
  /// keys x scoreRowVecs vectors of query rows.
  struct Blocking {
    int64_t rowBlock, colBlock, keyBlock, scoreRowVecs;
  };

  SoftmaxReadEmitter(TileReadOp op, Blocking blocking);
  virtual ~SoftmaxReadEmitter() = default;

  /// Expands the read in place and erases it.
  LogicalResult emit();

  /// Whether the tiles suit the blocking (q and k multiples of colBlock *
  /// vec); otherwise reports on the op.
  static LogicalResult checkTiles(TileReadOp op, Blocking blocking);

protected:
  /// Allocates scoresT (keys x bqPad f32) and the scratch the hooks below
  /// use; first, before the shared scratch.
  virtual void allocOperands();
  /// Packs q of head `h` (slot `j` of the group) for the score contraction;
  /// once per workgroup.
  virtual void packQuery(Value j, Value h);
  /// Packs the key tile [s0, s0 + ncols) for every head of the group.
  virtual void packKeys(Value s0, Value ncols);
  /// The value panel [clip(v) | X] of head slot `j` for the key tile.
  virtual void emitPanel(Value j, Value s0, Value ncols);
  /// S^T (keys x query rows, rows on lanes) into scoresT.
  virtual void emitScores(Value j, Value h, Value s0, Value ncols,
                          Value rowStart);
  /// acc = alpha * acc + P * panel, P in scoresT.
  virtual void emitContraction(Value j, Value ncols, Value rowStart);

  /// clip(v) and X - o (o = offsetBuf: 1 on narrow and centred channels)
  /// of key `key` for channels [c, c + lanes) of head slot `j`; 0 where
  /// `keep` (a scalar i1, may be null) is false, whatever v is. panelKind
  /// says what the head needs (emitKeyTile): Plain X = e^z (no offset
  /// channel), Offset e^z - o (no narrow one), Narrow also expm1(z) on the
  /// narrow channels.
  std::pair<Value, Value> panelValues(Value j, Value key, Value c, Value keep);
  /// Whether key `col` of the tile is present and not masked out (colOk).
  Value keyKept(Value col);

  /// The score contraction's register blocks: for every block of keyBlock
  /// keys (from column 0 to ncols rounded up) x scoreRowVecs vectors of rows
  /// (from the block of rowStart to rows rounded up), scoresT[col + i][rv..]
  /// = sum over `steps` of madd(sum, keyOperand(s, col, i, perKey),
  /// rowOperand(s, rv..)); perKeyBlock(col) runs once per key block, before
  /// its rows, and its values reach keyOperand. With trimCausal (a causal
  /// read) each key block starts at the row block of the first row that
  /// sees its first key, keyStart + col: the rows above it read those
  /// scores only under the online softmax's causal check, which drops them.
  void scoreBlocks(
      Value ncols, Value rowStart, Value steps,
      llvm::function_ref<SmallVector<Value>(Value)> perKeyBlock,
      llvm::function_ref<Value(Value, Value)> rowOperand,
      llvm::function_ref<Value(Value, Value, int64_t, ArrayRef<Value>)>
          keyOperand,
      llvm::function_ref<Value(Value, Value, Value)> madd,
      bool trimCausal = false);
  /// The value contraction's register blocks: for every block of rowBlock
  /// rows (from the block of rowStart to rowsPadded) x colBlock vectors of
  /// the accumulator width, acc[j][r][c..] = alpha[r] * acc[j][r][c..] *
  /// alphaLow[r] + the
  /// sum over `steps` of madd(sum, rowOperand(s, r), colOperand(s, c..)).
  /// rowSteps(r), when given, replaces `steps` for the row block at r.
  /// colOperandLo, when given, is a second column operand (the low half of
  /// a split panel) that the column blocks from loFrom on (a multiple of
  /// colBlock vectors) multiply too, into the same sums: madd(madd(sum, p,
  /// col), p, colLo), so acc is rescaled once for both.
  void accumulateBlocks(
      Value j, Value steps, Value rowStart,
      llvm::function_ref<Value(Value, Value)> colOperand,
      llvm::function_ref<Value(Value, Value)> rowOperand,
      llvm::function_ref<Value(Value, Value, Value)> madd,
      llvm::function_ref<Value(Value)> rowSteps = nullptr,
      llvm::function_ref<Value(Value, Value)> colOperandLo = nullptr,
      Value loFrom = {});
  /// A weight P of the online softmax as the value contraction multiplies
  /// it, so that the row sum l adds what the accumulator adds: P itself
  /// here; a read that rounds P to bf16 returns it rounded (in f32).
  virtual Value contractedWeight(Value p) { return p; }

  TileReadOp op;
  int64_t bq, bk;
  Blocking blocking;

  // Extents and workgroup coordinates.
  Value c0, c1, cLanes, cBq, cBqPad, cBk, cRB, cRowQuantum;
  Value T, S, dk, dv, dvp, width, group, batch, kvHead, t0, rows, rowsPadded;
  /// The first key of the key tile being read (emitKeyTile).
  Value keyStart;
  Value scale, twenty, negInf;
  int64_t bqPad = 0;
  // Shared scratch.
  /// vmaxBuf holds the tilt's shift in value units (the clipped max, or
  /// the centre on centred channels), shiftBuf beta times it.
  Value scoresT, acc, rowMax, rowSum, alpha, betaBuf, boundBuf, shiftBuf,
      vmaxBuf, offsetBuf, colOk, gateBuf;
  /// Per row: the rescale's second factor, 1, or 2^-24 where alpha holds
  /// e^x * 2^24 (a rescale by e^x below e^-80, emitRowMax).
  Value alphaLow;
  /// Per head slot: 1 when some channel has offset 1 (offsetBuf: narrow or
  /// centred), else 0.
  Value panelKindBuf;
  /// Plain: X = e^z on every lane; Offset: X - o, where o is 1 on the
  /// channels of offsetBuf (expm1 where |z| <= ln 2).
  enum class PanelKind { Plain, Offset };
  PanelKind panelKind = PanelKind::Offset;

private:
  void emitPrePass();
  void emitKeyTile(Value kt);
  void emitOnlineSoftmax(Value j, Value s0, Value ncols, Value rowStart);
  void emitEpilogue();
  /// The register block both contractions share: sums[i * vecs + k], from
  /// zero, = madd(sum, bcastOperand(s, i), vecOperand(s, k)) over steps s in
  /// [0, steps), bcasts x vecs accumulators; with vecOperandLo also
  /// madd(that, bcastOperand(s, i), vecOperandLo(s, k)) into the same sum.
  SmallVector<Value>
  rankOneSums(Value steps, int64_t bcasts, int64_t vecs,
              llvm::function_ref<Value(Value, int64_t)> vecOperand,
              llvm::function_ref<Value(Value, int64_t)> bcastOperand,
              llvm::function_ref<Value(Value, Value, Value)> madd,
              llvm::function_ref<Value(Value, int64_t)> vecOperandLo = nullptr);

  // The f32 read's operands.
  Value qT, panel;
  /// 16-bit storage only: the key tile widened to f32 once (Bk x dk), so
  /// the score contraction broadcasts f32 keys as it does for f32 storage.
  Value keyTile;
};

/// The least argument the epilogues pass to the polynomial exp: e^-80 =
/// 1.8e-35 is normal in float32, while an argument below about -87 would
/// build a subnormal (a microcode assist per vector). logAddExpSorted and
/// the scans' softplus (Epilogue.cpp) clamp there.
constexpr float kExpFloor = -80.0f;

/// logaddexp of hi >= lo (an epilogue's log Z and its tiny floor, as
/// EmitterBuilder::fmax/fmin sorted them) = hi + log1p(e^(lo - hi)), for
/// the softmax reads' epilogues and the scans' (Epilogue.cpp). Where every
/// lane's gap lo - hi is below kExpFloor (-80) the term, below e^-80 =
/// 1.8e-35, is dropped (one compare per vector: the usual case; it can
/// change hi only where |hi| < 1e-27); else the gap is clamped there, so
/// that the polynomial exp never builds a subnormal (a microcode assist per
/// vector: gaps near log(tiny) ~ -87.3 are common, since log Z ~ -M). A NaN
/// gap takes the full form.
Value logAddExpSorted(EmitterBuilder &e, Value hi, Value lo);

/// The softmax reads' shift of the tilt for channel vectors, from the
/// pre-pass over the keys a query tile sees: their raw max `hi` (-inf
/// where no key is kept), min `lo`, sum `sum`, the count `kept` (a scalar)
/// and `nan` (NaN where a value was NaN, else 0), with the channels' beta
/// and bound = cap/beta. Narrow channels (beta*(max - min) <= ln 2) and
/// centred ones (<= kCentredRange: the shift near the values' mean,
/// dialect/Priors.h) read X - 1 (`offset` true); the others X with the max
/// shift. `vShift` is in value units (the panel's z = beta*(clip(v) -
/// vShift)); the shift M of the epilogue is beta*vShift.
struct TiltShift {
  Value vShift, offset;
};
TiltShift softmaxTiltShift(EmitterBuilder &e, Value hi, Value lo, Value sum,
                           Value kept, Value nan, Value beta, Value bound);

/// Whether `op` takes the bf16 read on AVX512-BF16 dot products
/// (ReadSoftmaxBf16.cpp): a softmax read of bf16 operands with 16-lane
/// vectors, in a module whose target enables it (see the definition).
bool useBf16DotSoftmaxRead(TileReadOp op);

/// Expands one fem.tile_read (softmax, bf16) with both contractions on
/// vdpbf16ps, or reports why it cannot.
LogicalResult lowerTileReadToBf16Dot(TileReadOp op);

} // namespace mlir::fem::cpu

#endif // FEMC_PASSES_CPU_READSOFTMAX_H
