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
  /// Requires dk to divide dv (aft: channel j uses q/k channel j mod dk).
  bool dkDividesDv;
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
/// Looks a prior up by name.
const PriorInfo *findPrior(std::string_view name);
/// Index of `info` in allPriors().
int priorIndex(const PriorInfo &info);

/// Every operand name a FEM read can have, in the order of the table of
/// docs/semantics.md, plus "out".
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
/// beta_raw, lam, gate, mask (when given), the prior's extra operands, and
/// the output "out" last.
std::vector<std::string_view> kernelArguments(const PriorInfo &info,
                                              bool hasMask);

/// Whether keys sit on the query axis (T) for this read.
inline bool keysOnQueryAxis(const PriorInfo &info, bool causal) {
  return causal || info.alwaysCausal;
}

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
