//===- SoftmaxKernel.h - the GPU kernel of a softmax fem.tile_read -*- C++ -*-//
#ifndef FEMC_PASSES_NVIDIA_SOFTMAXKERNEL_H
#define FEMC_PASSES_NVIDIA_SOFTMAXKERNEL_H

#include "dialect/FEMOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"

namespace mlir::fem::nvidia {

/// The fixed shape of the blocked kernel (docs/gpu.md).
struct SoftmaxKernelShape {
  int64_t dk = 0, dv = 0;
  /// Threads that share one query row (a power of two <= 32).
  int64_t lanesPerRow = 8;
  /// Query rows per block (Bq) and threads per block.
  int64_t rows = 32, threads = 256;
  /// Keys per shared-memory tile (Bk).
  int64_t keys = 32;
  /// Static shared memory in bytes.
  int64_t sharedBytes = 0;
  /// The tensor-core variant (f16/bf16 storage): 4 (or 8) warps of 16 query
  /// rows,
  /// S = Q K^T and acc += P [V~ | X] on mma.sync.m16n8k16 with f32
  /// accumulators (docs/gpu.md).
  bool mma = false;

  /// Whether the kernel centres its tilt: both do (the tensor-core kernel
  /// keeps X as a pair of bf16, hi + lo, which makes centring pay there as
  /// in the CPU's bf16 reads: passes/cpu/ReadSoftmaxAmx.cpp).
  bool centresTilt() const { return true; }

  /// Floats per thread in the pre-pass reduction: max v, min v, the NaN flag,
  /// and where the kernel centres its tilt the sum and count of the visible
  /// values.
  int64_t prepassParts() const { return centresTilt() ? 5 : 3; }
};

/// Checks that `op` (in workgroup function `wg`) has a GPU lowering and
/// picks the kernel shape (the tensor-core variant where `tensorCores` and
/// the dtype and head widths allow it, with `mmaRows` query rows per block:
/// 64 or 128, 0 for 64); a located error otherwise, also for a nonzero
/// `mmaRows` on a read that gets the f32 kernel.
FailureOr<SoftmaxKernelShape> planSoftmaxKernel(TileReadOp op,
                                                bool tensorCores,
                                                int64_t mmaRows = 0);

/// Emits the kernel of `op` into `module` as `@<K>_gpu` with the launch
/// attributes of KernelAbi.h; `wg` is the workgroup function holding `op`.
FailureOr<gpu::GPUFuncOp> emitSoftmaxKernel(TileReadOp op, func::FuncOp wg,
                                            gpu::GPUModuleOp module,
                                            const SoftmaxKernelShape &shape,
                                            int64_t arch);

} // namespace mlir::fem::nvidia

#endif // FEMC_PASSES_NVIDIA_SOFTMAXKERNEL_H
