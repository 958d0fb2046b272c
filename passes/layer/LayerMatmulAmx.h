//===- LayerMatmulAmx.h - fem-layer-matmul's AMX matmul stages --*- C++ -*-===//
//
// The split-bf16 matmul stages of fem-layer-matmul (precision bf16x3 and
// bf16x6, passes/layer/LayerMatmulAmx.cpp): C(M,N) += A(M,K)·B in f32
// accuracy from bf16 products on Intel AMX tiles. The layout and grids are
// femc::layer::AmxBlocking (LayerMatmulBlocking.h).
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_PASSES_LAYER_LAYERMATMULAMX_H
#define FEMC_PASSES_LAYER_LAYERMATMULAMX_H

#include "passes/layer/LayerMatmulBlocking.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

#include <optional>

#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::fem::layer {

using femc::layer::AmxBlocking;
using femc::layer::MatmulPrecision;

/// "f32", "bf16x3", "bf16x6" (the `precision` option's values).
std::optional<MatmulPrecision> parseMatmulPrecision(llvm::StringRef name);
llvm::StringRef matmulPrecisionName(MatmulPrecision p);

/// Whether the module's target (fem.target_features) has AMX-BF16 tiles
/// (amx-tile and amx-bf16), which the split-bf16 stages need.
bool targetHasAmxBf16(ModuleOp module);

/// The packed-operand type of the AMX stages: memref<? x 32 x bf16>.
MemRefType amxPackedType(MLIRContext *ctx);

/// Bodies of the AMX stages' workgroup functions (args: the buffers, then
/// the workgroup index), built at `b`:
///   pack_a(A: memref<?x?xf32>, Ap, rt)      A's row tile rt, split
///   pack_b(B: memref<?x?xf32>, Bp, ct)      B's column tile ct, split, VNNI
///                                           (B is (N, K) if nt, else (K, N))
///   mmx(Ap, Bp, C: memref<?x?xf32>, i)      workgroup i's tile of C
/// rows (n vectors of n elements, n a power of two) transposed:
/// out[k][j] = rows[j][k]. One exchange per bit of the index: rows j and
/// j + s swap the elements whose position has bit s and j lacks it
/// (n / 2 · log2(n) pairs of two-source shuffles). The f32 nt pack (8 or
/// 16 lanes) and the AMX nt pack (16 pairs of bf16 as i32) use it.
SmallVector<Value> transposeSquare(ImplicitLocOpBuilder &b,
                                   SmallVector<Value> rows);

void buildAmxPackA(OpBuilder &b, Location loc, ValueRange args,
                   const AmxBlocking &blk);
void buildAmxPackB(OpBuilder &b, Location loc, ValueRange args,
                   const AmxBlocking &blk, bool nt);
void buildAmxMatmul(OpBuilder &b, Location loc, ValueRange args,
                    const AmxBlocking &blk);

/// Index values of the layer-side grid: rows of Ap and Bp, and the
/// workgroups of each stage, for M, N, K.
struct AmxGrid {
  Value rowsA, rowsB, packA, packB, matmul;
};
AmxGrid amxGrid(OpBuilder &b, Location loc, Value M, Value N, Value K,
                const AmxBlocking &blk);

} // namespace mlir::fem::layer

#endif // FEMC_PASSES_LAYER_LAYERMATMULAMX_H
