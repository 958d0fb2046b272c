//===- TileScan.h - fem-tile's table-driven pieces ----------------*- C++ -*-===//
#ifndef FEMC_PASSES_TILESCAN_H
#define FEMC_PASSES_TILESCAN_H

#include "dialect/FEMOps.h"
#include "dialect/Priors.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::fem {

/// The tiles of a read of prior `kind`: the options when non-zero, else
/// `fromIR` (the read's #fem.tiles, may be null), else the prior's defaults
/// at `targetVec` lanes; checked against the prior's tile rules (a
/// diagnostic on `read` names the tile and the rule).
FailureOr<TilesAttr> chooseReadTiles(Operation *read, PriorKind kind,
                                     TilesAttr fromIR, int64_t tileQ,
                                     int64_t tileK, int64_t vec,
                                     int64_t targetVec);

/// The workgroup grid of a read as the `fem.grid` attribute of its
/// workgroup function: three [extent name, divisor] pairs (x, y, z), each
/// axis spanning ceil(extent / divisor) workgroups.
ArrayAttr workgroupGridAttr(MLIRContext *ctx, PriorKind kind, TilesAttr tiles);

/// Reads `fem.grid` back (a diagnostic when it is missing or malformed).
FailureOr<SmallVector<femc::priors::GridAxis, 3>>
readWorkgroupGrid(func::FuncOp wg);

/// Replaces kernel-level function `f` (its body `prior`, `read` and the
/// return) by its workgroup function `@<f>_wg` holding one fem.scan_read,
/// for the scan priors (linear, gla, aft, ssm).
/// The workgroup function of kernel `f`: one memref per read operand (i1
/// masks as bytes), the output `result`, then the three grid indices; named
/// `<f>_wg`, with fem.kernel, fem.arg_names, fem.grid and the C interface the
/// driver reads. Shared by fem-tile's softmax and scan paths.
/// A kernel whose read carries a state also gets `state_out` after the
/// output (`stateOut`, the mixer's second result).
func::FuncOp createWorkgroupFunction(
    OpBuilder &b, func::FuncOp f,
    ArrayRef<std::pair<Value, StringRef>> operands, Value result,
    PriorKind kind, TilesAttr tiles, Value stateOut = Value());

LogicalResult tileScanRead(func::FuncOp f, PriorOp prior, FusedReadOp read,
                           TilesAttr tiles);

/// As tileScanRead for kernel-level function `f` whose body is a fem.mixer
/// of a scan prior with a carried state (`state` operand or `state_out`
/// result), which fem-expand-mixer leaves whole, and the return of its
/// results.
LogicalResult tileStatefulMixer(func::FuncOp f, MixerOp mixer,
                                TilesAttr tiles);

/// Why the scan read of a workgroup function cannot be split along the
/// sequence (docs/architecture.md, "Both cores at B = H = 1"), or nothing.
std::optional<std::string> whyNotSplit(ScanReadOp read);
/// The width Ks of the state records of `read`, or -1 when dk or N is
/// dynamic (then the kernel is not split: the glue cannot size the scratch).
int64_t scanStateWidth(ScanReadOp read);

/// The chunk-level parallel prefix: next to each scan workgroup function
/// `@<k>_wg` that can be split, adds `@<k>_wg_local` (phase 1: the segment's
/// state from the empty state, `state_only`, records of Ks + 1 floats) and
/// `@<k>_wg_segment` (phase 3: the segment's rows from its initial state),
/// both with the kernel's inputs (without its state), then state, out,
/// state_out and the grid; marked `fem.split_of` (the kernel) and
/// `fem.split_phase`. The driver's glue runs them (phase 2, the prefix over
/// the segment states, is C it writes from the state layout).
LogicalResult addScanSplitFunctions(ModuleOp module);

} // namespace mlir::fem

#endif // FEMC_PASSES_TILESCAN_H
