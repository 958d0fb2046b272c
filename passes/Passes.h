//===- Passes.h - fem passes --------------------------------------*- C++ -*-===//
#ifndef FEMC_PASSES_PASSES_H
#define FEMC_PASSES_PASSES_H

#include "dialect/FEMDialect.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassOptions.h"

#include <string>

namespace mlir::fem {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

/// Options of the `fem-to-cpu` pipeline.
struct CPUPipelineOptions : public PassPipelineOptions<CPUPipelineOptions> {
  Option<int64_t> tileQ{*this, "tile-q", llvm::cl::desc("Query rows per "
                                                        "workgroup (0: default)"),
                        llvm::cl::init(0)};
  Option<int64_t> tileK{*this, "tile-k",
                        llvm::cl::desc("Keys per inner step (0: default)"),
                        llvm::cl::init(0)};
  Option<int64_t> vectorWidth{*this, "vec",
                              llvm::cl::desc("Vector lanes (0: default)"),
                              llvm::cl::init(0)};
  Option<std::string> target{*this, "target",
                             llvm::cl::desc("CPU whose vector width and "
                                           "default tiles apply: host (this "
                                           "machine), avx2, avx512 or "
                                           "generic"),
                             llvm::cl::init("host")};
  Option<std::string> matmulPrecision{
      *this, "matmul-precision",
      llvm::cl::desc("Layer projections: auto, f32, bf16x3 or bf16x6 "
                     "(fem-layer-matmul's precision)"),
      llvm::cl::init("auto")};
};

/// fem dialect → fused read → workgroup functions with fem.tile_read.
void buildFEMToTiledPipeline(OpPassManager &pm, const CPUPipelineOptions &o);
/// fem.tile_read → scf/vector/memref/arith/math; the layer projections for
/// `o`'s target and matmul precision (the defaults without `o`).
void buildTiledToLoopsPipeline(OpPassManager &pm);
void buildTiledToLoopsPipeline(OpPassManager &pm, const CPUPipelineOptions &o);
/// scf/vector/memref/arith/math → LLVM dialect.
void buildLoopsToLLVMPipeline(OpPassManager &pm);
/// fem dialect → fused → tiled → scf/vector (stops before LLVM).
void buildFEMToLoopsPipeline(OpPassManager &pm, const CPUPipelineOptions &o);
/// The whole CPU pipeline: fem dialect → LLVM dialect.
void buildFEMToCPUPipeline(OpPassManager &pm, const CPUPipelineOptions &o);
/// Registers `fem-to-loops` and `fem-to-cpu`.
void registerFEMPipelines();

/// Vector lanes the named target prefers (8 for avx2, 16 for avx512, 4 for
/// generic; host asks LLVM for the host CPU's features).
int64_t defaultVectorWidth(llvm::StringRef target);
/// Whether `target` is one of the tile targets the CPU passes take (host,
/// avx2, avx512, generic): the one list fem-tile and fem-layer-matmul check.
bool isTileTarget(llvm::StringRef target);

} // namespace mlir::fem

#endif // FEMC_PASSES_PASSES_H
