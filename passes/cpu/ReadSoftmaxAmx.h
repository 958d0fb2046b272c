//===- ReadSoftmaxAmx.h - the AMX online-softmax read -----------*- C++ -*-===//
//
// Part of the femc project.
//
// The bf16 softmax read on Intel AMX tiles (passes/cpu/ReadSoftmaxAmx.cpp):
// chosen by fem-lower-to-cpu when the module's target has AMX-BF16 (the
// driver stamps the target's features on the module, see
// kTargetFeaturesAttr) and the read's operands are stored in bf16.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_PASSES_CPU_READSOFTMAXAMX_H
#define FEMC_PASSES_CPU_READSOFTMAXAMX_H

#include "dialect/FEMOps.h"

namespace mlir::fem::cpu {

/// The module attribute (a string of LLVM features, "+avx512f,+amx-bf16,...")
/// naming what the code may use. Without it no feature-specific path is
/// taken.
constexpr const char *kTargetFeaturesAttr = "fem.target_features";

/// Not an LLVM feature: the femc code path `--target=<cpu>+bf16dot` asks
/// for, the bf16 softmax read on AVX512-BF16 dot products
/// (ReadSoftmaxBf16.cpp). The target stamps it among the module's features
/// and leaves it out of LLVM's.
constexpr const char *kBf16DotFeature = "fem-bf16-dot";

/// Whether the module's target features (kTargetFeaturesAttr) enable
/// `feature` (an LLVM feature name such as "amx-bf16").
bool targetHasFeature(Operation *op, StringRef feature);

/// Whether `op` takes the AMX path: a softmax read of bf16 operands with
/// 16-lane vectors, in a module whose target has amx-tile and amx-bf16.
bool useAmxSoftmaxRead(TileReadOp op);

/// Whether every float operand of `op` is a bf16 memref with the identity
/// layout and its key mask (if any) i8 bytes, as the bf16 reads (`read`
/// names one in the error: "the AMX read") need; otherwise reports on `op`.
LogicalResult verifyBf16ReadOperands(TileReadOp op, StringRef read);

/// Expands one fem.tile_read (softmax, bf16) into AMX tile contractions and
/// AVX-512 vector code, or reports why it cannot.
LogicalResult lowerTileReadToAmx(TileReadOp op);

} // namespace mlir::fem::cpu

#endif // FEMC_PASSES_CPU_READSOFTMAXAMX_H
