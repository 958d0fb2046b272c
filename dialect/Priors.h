//===- Priors.h - what femc knows about each prior, in one place -*- C++ -*-===//
//
// The single table of prior facts (docs/architecture.md, "A prior is declared
// once"): which operands a prior reads and their extents, whether it is
// always causal, whether it takes a key mask or a logit scale, how its
// workgroup grid is laid out (query tiles or a whole-sequence scan) and which
// tile sizes are legal. The verifier, fem-tile, the CPU lowering, the femc
// driver's argument tables, fem-run and the Python module read it.
//
// Plain C++17 with no MLIR or LLVM dependency, so the runtime-side tools that
// are built without the compiler can use it too. Prior kinds are indexed as
// in the dialect's PriorKind enum (softmax 0, linear 1, gla 2, aft 3, ssm 4).
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_DIALECT_PRIORS_H
#define FEMC_DIALECT_PRIORS_H

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace femc::priors {

/// How the workgroups of a prior's read split the work.
enum class GridKind {
  /// (query tile, kv head, batch): every workgroup owns rows of queries and
  /// walks the keys (softmax).
  QueryTiles,
  /// (value-channel block, query head, batch): every workgroup walks the
  /// whole sequence in chunks, carrying a state (linear, gla, aft, ssm).
  Scan,
};

/// The algorithm of a prior's tiled read; the CPU lowering has one emitter
/// per algorithm (passes/cpu/Read*.cpp).
enum class ReadAlgorithm {
  /// Online softmax over key tiles (two accumulators, one pass).
  OnlineSoftmax,
  /// Chunks of an intra-chunk quadratic form plus a carried dk x 2dv state
  /// (linear, gla); the scores are repeated by every channel block.
  ChunkedLinear,
  /// A per-channel running sum (aft).
  AftScan,
  /// A per-channel selective scan with an E x N state (ssm).
  SsmScan,
};

/// The named extents of a FEM read, in this order everywhere (the driver's
/// argument tables index them): batch, queries, keys, query heads, key/value
/// heads, query/key width, value width, flat channels H*dv, ssm state size.
inline constexpr std::string_view kExtents[] = {"B",  "T",  "S",  "H", "Hkv",
                                                "dk", "dv", "E",  "N"};
inline constexpr int kNumExtents = 9;
/// Index of `name` in kExtents, or -1.
int extentIndex(std::string_view name);

/// The facts of one prior.
struct PriorInfo {
  std::string_view name;
  /// Reads queries and keys (q, k). Only ssm does not.
  bool usesKeys;
  /// The read is causal whatever the `causal` flag says (gla and aft: a
  /// quirk of the reference; ssm: a scan).
  bool alwaysCausal;
  /// Accepts a key-padding mask (B,S).
  bool maskAllowed;
  /// Accepts the `scale` attribute on q.k.
  bool scaleAllowed;
  /// The values are squashed by a sigmoid before the clip (ssm).
  bool squashValues;
  /// Requires dk to divide the read width 2 dv (aft: channel j of [V~ | X]
  /// uses q/k channel j mod dk; see dkDividesWidthError).
  bool dkDividesWidth;
  /// How the tiled read is split into workgroups.
  GridKind grid;
  /// How one workgroup computes its part.
  ReadAlgorithm algorithm;
  /// The operands this prior needs beyond q, k, v, beta_raw, lam, gate, in
  /// the order of docs/semantics.md.
  std::vector<std::string_view> extraOperands;
  /// What `#fem.tiles<q = .., k = ..>` mean for this prior.
  std::string_view tileQMeaning, tileKMeaning;
};

/// The table, indexed by prior kind (softmax, linear, gla, aft, ssm).
const std::vector<PriorInfo> &allPriors();
/// The facts of prior `kind` (0..4); aborts on an index outside the table.
const PriorInfo &priorInfo(int kind);
/// With dk and dv known (>= 0): the message, without the op, when they break
/// `info`'s dkDividesWidth rule, else std::nullopt.
std::optional<std::string> dkDividesWidthError(const PriorInfo &info,
                                               int64_t dk, int64_t dv);
/// Looks a prior up by name.
const PriorInfo *findPrior(std::string_view name);
/// Index of `info` in allPriors().
int priorIndex(const PriorInfo &info);

/// Every operand name a FEM read can have, in the order of the table of
/// docs/semantics.md, plus "out" and the carried state ("state",
/// "state_out").
const std::vector<std::string_view> &allOperandNames();

/// The extents of operand `name` (an input name or "out") as extent names,
/// for layout bthd (`bhtd` = false) or bhtd, with keys on the query axis T
/// when `keysOnQueryAxis` (causal reads) and on S otherwise. Empty for an
/// unknown name.
std::vector<std::string_view> operandDims(std::string_view name, bool bhtd,
                                          bool keysOnQueryAxis);
/// The extents of operand `name` of a read of prior `info`: keys on T for
/// causal reads, and values on the query heads H for priors without keys
/// (ssm reads v per query head).
std::vector<std::string_view> operandDims(const PriorInfo &info,
                                          std::string_view name, bool bhtd,
                                          bool causal);
/// The same joined with commas ("B,T,H,dk").
std::string operandDimsString(const PriorInfo &info, std::string_view name,
                              bool bhtd, bool causal);
/// As operandDims, joined with commas.
std::string operandDimsString(std::string_view name, bool bhtd,
                              bool keysOnQueryAxis);

/// Whether prior `info` reads operand `name` (with the key mask only when
/// `hasMask`).
bool usesOperand(const PriorInfo &info, std::string_view name, bool hasMask);

/// The arguments of a compiled kernel, in order: q, k (not ssm), v,
/// beta_raw, lam, gate, mask (when given), the prior's extra operands, the
/// initial state "state" (when `hasStateIn`), the output "out", and the final
/// state "state_out" last (when `hasStateOut`).
std::vector<std::string_view> kernelArguments(const PriorInfo &info,
                                              bool hasMask,
                                              bool hasStateIn = false,
                                              bool hasStateOut = false);
/// Whether argument `name` is written by the kernel ("out", "state_out").
bool isOutputArgument(std::string_view name);

/// Whether keys sit on the query axis (T) for this read.
inline bool keysOnQueryAxis(const PriorInfo &info, bool causal) {
  return causal || info.alwaysCausal;
}

/// The carried state of a scan read (docs/semantics.md, "Segments"): a float32
/// tensor (B, H, dv, Ks) read as the initial state (`state`) and written as
/// the final state (`state_out`), with Ks floats per value channel. Every
/// channel's record starts with the common part [M, L, seen] and continues
/// with the prior's part at kStatePriorPart:
///   linear, gla: [C, S_mu (dk), S_X (dk), z (dk)]     Ks = 4 + 3 dk
///                (S_X in the offset form where recordNarrow)
///   aft:         [n_mu, n_X, u_mu, u_X, d, kmax, count, d_X, kmax_X] Ks = 12
///                (d_X, kmax_X: the X stream's d and kmax, which differ from
///                d, kmax when dk does not divide dv; copies of them, and
///                not read, when it does; n_X, u_X in the offset form
///                where recordNarrow, with normalisers d_X and count)
///   ssm:         [x_mu (N), x_X (N), x_1 (N)]            Ks = 3 + 3 N
///                (x_X in the offset form where recordNarrow)
/// An all-zero record is the empty state (no key seen).
enum StateSlot : int64_t {
  kStateShift = 0,    // P: the shift of the record's X sums (<= the max M)
  kStateLow = 1,      // L: min of beta*clipped over the keys seen
  kStateSeen = 2,     // 1 once a key was seen, else 0
  kStatePriorPart = 3 // first slot of the prior's part
};
/// The log restore's narrow test (docs/semantics.md): a channel whose
/// beta*clipped values span at most ln 2 (float32) reads X - 1.
inline constexpr float kNarrowRange = 0.69314718f;
/// The softmax read (on an f32 panel; causal query tiles over the keys
/// they see) and a stateless non-causal linear read centre their tilt
/// (docs/semantics.md, "The centred tilt"): a channel whose
/// beta*clipped values span at most kCentredRange takes the shift
/// c = clamp(beta * clip(mean v), L, min(M, L + kCentreSpan)) and reads
/// X - 1 = e^(beta V~ - c) - 1 (expm1 where |z| <= ln 2). A row sums up
/// to all S keys there, and near beta*sigma_v ~ 0.1 the sums of
/// X = e^(beta V~ - M), all of one sign, lose ~u sqrt(S) of Z, which F
/// divides by beta (1e-4 of max|out| at S = 4096); X - 1 around the mean
/// has both signs. The span bound keeps Z = 1 + R(X - 1) >= e^-kCentreSpan,
/// so forming Z from X - 1 costs at most e^3 ulps of log Z where a row's
/// weight sits on the lowest values.
inline constexpr float kCentredRange = 12.0f;
inline constexpr float kCentreSpan = 3.0f;
/// The scan reads' tilt shift P = M - h, h = clamp(M - L - free, 0,
/// kTiltMax), free = max(0, kTiltFloor + ln eps) (docs/semantics.md,
/// "Arithmetic"): the kernels (passes/cpu/Prepass.cpp) and the reference
/// (reference/Reference.cpp) read both from here.
inline constexpr float kTiltFloor = 85.0f;
inline constexpr float kTiltMax = 32.0f;
/// Whether a record's X sums (linear, gla: S_X; aft: n_X, u_X; ssm: x_X)
/// are in the offset form X - 1, sums of w (e^(beta V~ - M) - 1), rather
/// than of w X: where it has seen a key and M - L <= kNarrowRange in float32.
/// At a tiny beta every X is 1 - O(beta): a float32 sum of X would keep a
/// few digits of X - 1, all that F depends on there.
inline bool recordNarrow(float shift, float low, float seen) {
  return seen > 0.5f && shift - low <= kNarrowRange;
}
/// Whether prior `info` can carry a state (the scan priors).
bool hasState(const PriorInfo &info);
/// Ks for prior `info` with query/key width `dk` and ssm state size `n`
/// (either may be unused by the prior); -1 when it depends on an extent that
/// is dynamic (negative) or the prior carries no state.
int64_t stateChannelWidth(const PriorInfo &info, int64_t dk, int64_t n);
/// The name of the state's last extent in argument tables and messages.
inline constexpr std::string_view kStateExtent = "Ks";

/// Tile sizes of one read: `q` and `k` as the table's meanings say, `vec`
/// vector lanes.
struct Tiles {
  int64_t q = 0, k = 0, vec = 0;
};

/// The target's default tiles for `info` at `vec` lanes.
Tiles defaultTiles(const PriorInfo &info, int64_t vec);
/// Checks `tiles` (vec already chosen); returns an error message naming the
/// tile and the rule, or std::nullopt when legal.
std::optional<std::string> checkTiles(const PriorInfo &info,
                                      const Tiles &tiles);

/// One axis of the workgroup grid: ceil(extent `symbol` / `divisor`).
struct GridAxis {
  std::string_view symbol;
  int64_t divisor = 1;
};
/// The grid (x, y, z) of a read of `info` with `tiles`.
std::vector<GridAxis> workgroupGrid(const PriorInfo &info, const Tiles &tiles);

} // namespace femc::priors

#endif // FEMC_DIALECT_PRIORS_H
