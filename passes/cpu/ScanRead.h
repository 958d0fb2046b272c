//===- ScanRead.h - shared pieces of the scan-family CPU reads ---*- C++
//-*-===//
//
// One workgroup of a `fem.scan_read` owns the value channels
// [c0, c0 + cw) of query head h in batch b (cw <= Bc = tiles.k), for every
// position. The pieces every scan emitter shares:
//
//   ValueStreams (Prepass.cpp): beta, the clip bound, the shift M and the
//     panel offset o per channel of the block (one pass over the raw values
//     of the kv head), and the panel row [clipped | X - o] of one key.
//   GateEpilogue (Epilogue.cpp): per output row, the gate norm over all dv
//     channels, then per channel vector mu, the log restore of Z and the
//     gated output store.
//
// The offset o is 1 on channels whose tilted values all lie in [1/2, 1]
// (max - min of beta*clipped <= ln 2, "narrow"), and on the centred
// channels of a non-causal read without a carried record (stateless, or a
// split's phase with `keys`; max - min <= kCentredRange,
// shift near the values' mean, dialect/Priors.h), and 0 elsewhere. The
// panel stores X - o and a read returns R(X - o) = R(X) - o*R(1), so each
// emitter also gives R(1) - 1 (exactly 0 when its weights are normalised),
// and the epilogue takes log Z = log1p(R(X - o) + R(1) - 1) there: F's
// error is then relative to |X - 1|, which matters because F divides
// log Z by beta.
//
// Emitters (one per read algorithm of dialect/Priors.h):
//   ReadLinear.cpp  linear and gla: chunks, intra-chunk quadratic form,
//                   carried dk x 2Bc state (decay relative to the chunk).
//   ReadAft.cpp     aft: per-channel running sums (the X half with its own
//                   q/k channels where dk does not divide dv).
//   ReadSsm.cpp     ssm: per-channel selective scan of three streams.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_PASSES_CPU_SCANREAD_H
#define FEMC_PASSES_CPU_SCANREAD_H

#include "dialect/FEMPriors.h"
#include "passes/cpu/Builder.h"

namespace mlir::fem::cpu {

/// The extents and coordinates of one scan workgroup.
struct ScanWorkgroup {
  Value c0i, c1i, cLanes;      // index constants 0, 1, lanes
  Value T, S, H, hkv, dk, dv;  // extents (dk null for ssm)
  Value batch, head, kvHead;   // coordinates
  Value chan0, cw, cwp;        // block start, width, width rounded to lanes
  int64_t cb = 0, chunk = 0;   // tiles.k and tiles.q
  Value eps;                   // scalar f32
  /// i1: max(T, S) >= kFarRows, where PrefetchLevel::L2 applies (shorter
  /// sequences keep every prefetch in L1).
  Value far;
};

/// Computes the workgroup's extents from the op.
ScanWorkgroup setUpScanWorkgroup(EmitterBuilder &e, ScanReadOp op);

/// Where a scan's software prefetch puts a row's lines (the locality hint
/// of llvm.prefetch): L1 (prefetcht0, every level) or L2 (prefetcht1).
/// Rows fetched far ahead go to L2: at long T they come from DRAM, and a
/// chunk of rows (linear, gla: 64 rows of six operands, ~1900 lines) or
/// aft's 16 rows (~480) is as large as or larger than the 512-line L1, where
/// they evicted each other and the step's own data before their use
/// (docs/benchmarks.md, "Scan priors", the Zen 4 session of 2026-12-03).
/// Only where max(T, S) >= kFarRows: below, a sequence's rows stay in L3
/// across launches (aft at T = 1k: 12 MiB of 32), and L1 timed 2-6 % faster
/// there.
enum class PrefetchLevel : int { L1 = 3, L2 = 2 };
inline constexpr int64_t kFarRows = 4096;

/// beta, bound, shift and offset of the block's channels, and panel rows.
class ValueStreams {
public:
  ValueStreams(EmitterBuilder &e, ScanReadOp op, const ScanWorkgroup &w)
      : e(e), op(op), w(w) {}
  /// The pre-pass over all keys of the kv head (unmasked keys only); its
  /// rows ahead are prefetched into `level`. Where needsPass(op) is false
  /// it reads no value: beta, bound and invBeta as always, the range and
  /// shift of a launch without keys.
  void emit(PrefetchLevel level = PrefetchLevel::L1);
  /// Whether `op` reads its values before the rows. A causal launch
  /// without a carried state does not: ChunkShift takes its shift from the
  /// keys the rows have reached and marks a NaN value's channel after the
  /// rows (ChunkShift::settle); the pass's range (the launch's final shift,
  /// L and "some key") is for a state's record.
  static bool needsPass(ScanReadOp op);
  /// [clipped | X - o] of key s at block channel vector cv (an offset into
  /// the block). Masked keys (and lanes past the block) give 0.
  std::pair<Value, Value> panel(Value s, Value cv, Value keep = Value());
  /// Whether key s is kept by the key mask (an i1), or null without a mask.
  Value keyKept(Value s);
  /// A running fold of the raw values of block channel vector cv: their
  /// max and min and, where the fold has them (non-null), their sum and a
  /// NaN flag (1 where a value was NaN).
  struct RawFold {
    Value hi, lo, sum, nan;
  };
  /// `acc` with key s folded in, unchanged where `keep` (keyKept(s), or
  /// null: every key kept) is false.
  RawFold foldKey(Value s, Value cv, const RawFold &acc, Value keep);

  Value beta, bound, shift, offset; // buffers of Bc floats
  Value invBeta;                      // 1 / beta (Bc floats)
  /// 1 where a kept value of the channel is NaN (Bc floats): the shift is
  /// NaN on those channels for every row, as the reference's M over all keys
  /// (0 without the pass: ChunkShift finds them).
  Value nanLanes;
  /// The pre-pass's range of the segment's kept keys (Bc floats each): L =
  /// beta * clip(min value) (the shift's low, before a carried record's is
  /// merged; beta * bound where no key was kept) and 1 where a key was
  /// kept, else 0.
  Value low, anyKey;
  /// Per channel vector (at its first lane): 1 if a lane has offset 1,
  /// else 0, so that the panel takes e^z alone (Bc floats).
  Value vectorKind;
  /// vectorKind from offset (after a change to it).
  void classifyVectors();

private:
  EmitterBuilder &e;
  ScanReadOp op;
  const ScanWorkgroup &w;
};

/// The log restore and the gate for the block's channels of one row.
class GateEpilogue {
public:
  /// Construct at the workgroup's top level: allocates the g+ rows.
  GateEpilogue(EmitterBuilder &e, ScanReadOp op, const ScanWorkgroup &w,
               ValueStreams &streams);
  /// The gate factor of row t (all dv channels): store() multiplies it by
  /// u = g+ / max g+, which rowScale keeps in slot t mod kGateRows (g =
  /// u * sqrt(dv) / max(||u||, 1e-5 / max g+), EmitterBuilder::gateNormScale).
  Value rowScale(Value t);
  /// At most this many rows' rowScale calls may come between rowScale(t)
  /// and the last store(t, ...) of row t (their g+ rows are kept).
  static constexpr int64_t kGateRows = 8;
  /// Stores out[b, t, h, c0 + cv ...] for one channel vector (row t's
  /// rowScale must have come first, see kGateRows): mu = R(V~),
  /// zRead = R(X - o), r1m1 = R(1) - 1, logScale (or null) added to log Z,
  /// has (a scalar i1, or null) false for rows that saw no key (out 0).
  void store(Value t, Value cv, Value scale, Value mu, Value zRead,
             Value r1m1, Value logScale = Value(), Value has = Value());

private:
  /// store() for one vector: lanes [0, cw - cv) where lanesLeft is set (a
  /// mask), else all lanes (plain loads and stores).
  void storeVector(Value t, Value cv, Value scale, Value mu, Value zRead,
                   Value r1m1, Value logScale, Value has, Value lanesLeft);

  EmitterBuilder &e;
  ScanReadOp op;
  const ScanWorkgroup &w;
  ValueStreams &streams;
  Value gatePlus; // kGateRows x dv (rounded to lanes) rows of u = g+/max g+
  /// dv is static and a multiple of lanes: every vector of a block is whole.
  bool wholeVectors = false;
};

/// The carried state of a scan read (dialect/Priors.h, StateSlot; the
/// record of value channel c is state[b, h, c, 0 .. Ks)). Without `state`
/// the read starts empty; with it, begin() merges the segment's key range
/// into the carried one: the shift becomes M = max(M_state, M_segment) and
/// the narrow offset is decided over both ranges.
///
/// Every scan prior's record holds its X sums (linear and gla: S_X, aft:
/// n_X and u_X, ssm: x_X) in the record's own offset form, sums of
/// w (X - o_rec) relative to the record's M, with o_rec = 1 where the
/// record has seen a key and M - L <= ln 2 (float32), else 0
/// (dialect/Priors.h, recordNarrow): at a tiny beta every X is 1 - O(beta),
/// and a float32 sum of X would keep only a few digits of the X - 1 that F
/// depends on. xSumFromRecord/xSumToRecord move such a sum between the
/// record's form and the read's (this segment's M and offset) without ever
/// forming X - 1 from X.
class ScanState {
public:
  ScanState(EmitterBuilder &e, ScanReadOp op, const ScanWorkgroup &w,
            ValueStreams &streams)
      : e(e), op(op), w(w), streams(streams) {}
  /// A split non-causal read (`keys`, FEMOps.td): `state` and `state_out`
  /// hold plain sums of the read's own centred form, no records to merge.
  bool plainSums() { return static_cast<bool>(op.getKeyBegin()); }
  /// A carried record comes in (`state`) / goes out (`state_out`).
  bool in() { return op.getState() && !plainSums(); }
  bool out() { return op.getStateOut() && !plainSums(); }
  /// After streams.emit(): the segment's range per channel and, with a
  /// carried state, the merged shift and offset.
  void begin();
  /// Slot `slot` of the carried record of block channel c (a scalar).
  Value load(Value c, Value slot);
  Value load(Value c, int64_t slot) { return load(c, e.idx(slot)); }
  /// Stores v into slot `slot` of block channel c's record in state_out.
  void store(Value c, Value slot, Value v);
  void store(Value c, int64_t slot, Value v) { store(c, e.idx(slot), v); }
  /// 1 where a key was carried in, else 0 (block channel c).
  Value seenIn(Value c) { return e.load(seen, {c}); }
  /// The read's offset-form sum (sum of w (X - o), relative to this
  /// segment's M) from a carried record's X slot `stored` (its offset form)
  /// and the matching carried normaliser `norm` (sum of w): with
  /// D = M_state - M, X' - o = e^D (X - o_rec) + (o_rec e^D - o), so the
  /// result is e^D stored + k norm with k = expm1(D) (o_rec = o = 1, the
  /// narrow case, D in [-ln 2, 0]), e^D (o_rec = 1, o = 0), -1 (o_rec = 0,
  /// o = 1, not reached: the merged range holds the record's) or 0; k norm
  /// is left out where k is 0 (0 * inf is NaN).
  Value xSumFromRecord(Value c, Value stored, Value norm);
  /// The record's X slot (its offset form, see recordNarrow) from the
  /// read's offset-form sum `shifted` and its normaliser `norm`: `shifted`
  /// where the read's offset is the record's (every channel that saw a
  /// key), else converted (norm + shifted, norm itself where it is
  /// infinite; shifted - norm).
  Value xSumToRecord(Value c, Value norm, Value shifted);
  /// Writes the common part (M, L, seen) of every channel of the block.
  void finish();
  /// 1 where a key was carried in, else 0 (Bc floats; all 0 without a
  /// carried record).
  Value seenBuffer() { return seen; }

private:
  EmitterBuilder &e;
  ScanReadOp op;
  const ScanWorkgroup &w;
  ValueStreams &streams;
  Value scaleX, seen, low, seenOut; // Bc floats each
  Value normCoef; // Bc floats: k of xSumFromRecord
};

/// The shift of a causal scan's tilt per chunk of rows (docs/semantics.md,
/// "The shift of the scan reads"): the rows of a chunk take the shift P and
/// the offset o of the keys seen up to the end of the chunk (the carried
/// record's range and this launch's keys), not the whole launch's. Where
/// that range spans at most kCentredRange, P is the centred tilt's shift
/// on the mean of this launch's kept keys so far (o = 1; dialect/Priors.h),
/// else placeShift's max-based one. A row before a later outlier then sums
/// X of its own keys' range (X - 1 = 0 exactly where they are all equal)
/// rather than terms e^-d of one sign that round by ~u t and leave
/// F ~ u t / beta once log Z + P cancels, and a row after it sums X - 1 of
/// both signs around the mean instead of e^-d - 1 of one sign. Between
/// chunks the X sums move to the new (P, o) as a record's do
/// (ScanState::xSumFromRecord: e^D S + k norm, D = P_old - P). After the
/// last chunk settle() moves them to the launch's final max-based (P, o)
/// of ScanState::begin, so records and state_out keep their format. A
/// launch without a state reads no value before its rows
/// (ValueStreams::needsPass): a NaN value, which makes the reference's M
/// and so every row of its channel NaN, is found by the running fold, and
/// settle() writes NaN to the rows before it.
class ChunkShift {
public:
  ChunkShift(EmitterBuilder &e, ScanReadOp op, const ScanWorkgroup &w,
             ValueStreams &streams, ScanState &carried)
      : e(e), op(op), w(w), streams(streams), carried(carried) {}
  /// Whether `op` takes the shift per chunk: a causal read (keys on the
  /// query axis), a split's phase 1 (stateOnly) too, whose sums then round
  /// as the rows' do. Its emitter loads the carried X sums raw (in the
  /// record's own form), and the first advance() moves them.
  static bool applies(ScanReadOp op);
  /// After streams.emit() and carried.begin(): the running range empty or
  /// the carried record's (its P, L and offset).
  void begin();
  /// Folds the kept keys [s0, s1) into the running range, sets
  /// streams.shift, offset and vectorKind to the running (P, o) and, where
  /// some channel's (P, o) changed, runs `moveSums` (which applies move()
  /// to every X sum of the emitter).
  void advance(Value s0, Value s1, llvm::function_ref<void()> moveSums);
  /// After the last chunk. With a state out: the launch's final (P, o) of
  /// begin() back in streams (the running ones equal them unless no key
  /// was seen), the sums moved where they differ. Without the value pass:
  /// NaN in every row that saw a key of each channel whose kept values
  /// hold a NaN (the rows the pass's NaN shift would have made NaN).
  void settle(llvm::function_ref<void()> moveSums);
  /// An X sum of block channel vector cv moved from the previous (P, o) to
  /// the current: scale * stored + coef * norm (norm: its normaliser, a
  /// vector of e's lanes).
  Value move(Value cv, Value stored, Value norm);

private:
  /// From (pNew, oNew) per channel vector: the move's scale and coef, the
  /// running (P, o, seen) and streams' shift and offset. Returns an i1:
  /// some lane of the block moves.
  Value retarget(llvm::function_ref<std::pair<Value, Value>(Value cv)> target,
                 Value seenNew);

  EmitterBuilder &e;
  ScanReadOp op;
  const ScanWorkgroup &w;
  ValueStreams &streams;
  ScanState &carried;
  // Bc floats each: the running raw max and min of the kept values, the
  // running P, o and seen, the move's scale and coef, the carried record's
  // P and L, and begin()'s final shift and offset (with a state out only,
  // else null).
  Value hiRaw, loRaw, pRun, oRun, seenRun, scale, coef, pState, lState;
  Value finalShift, finalOffset;
  Value sumRaw; // the running sum of the kept raw values (the centre)
  // 1 where a kept value so far was NaN, else 0; null where the pass ran
  // (its streams.nanLanes covers the launch).
  Value nanRaw;
  Value seenNext; // advance()'s seen for retarget()
  Value keptRun;  // 1 float: this launch's kept keys so far
};

/// P = m - clamp(m - l - free, 0, kTiltMax) of placeShift (scalars or
/// vectors), free = max(0, kTiltFloor + ln eps) of `op`.
Value tiltShift(EmitterBuilder &e, ScanReadOp op, Value m, Value l);

/// softplus(x) (torch's: x for x > 20, else log1p(e^x)) as
/// max(x, 0) + log1p(e^-|x|) with e^-|x| floored at e^floor: one exp and a
/// polynomial, no exponent split nor division (Epilogue.cpp). The gate
/// takes floor = kExpFloor (-80; g+ enters only through its ratios, next to
/// eps); aft's q -87 (log q-hat enters F; e^-87 is still a normal float).
Value gateSoftplus(EmitterBuilder &e, Value x, float floor);

/// The emitters, one per read algorithm. Each expands `op` in place.
void emitChunkedLinearRead(ScanReadOp op);
void emitAftScanRead(ScanReadOp op);
void emitSsmScanRead(ScanReadOp op);

} // namespace mlir::fem::cpu

#endif // FEMC_PASSES_CPU_SCANREAD_H
