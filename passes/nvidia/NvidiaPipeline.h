//===- NvidiaPipeline.h - fem passes and pipeline for NVIDIA GPUs -*- C++ -*-=//
//
// The NVIDIA GPU lowering of the tiled FEM read (docs/gpu.md): the passes
// fem-lower-to-gpu, fem-gpu-expand-math and fem-gpu-extract-kernels, and
// the pipeline `fem-tiled-to-nvvm` that takes the module after `fem-tile`
// to LLVM-dialect NVVM kernels for translateModuleToLLVMIR and the NVPTX
// back end. The kernels' contract is passes/nvidia/KernelAbi.h.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_PASSES_NVIDIA_NVIDIAPIPELINE_H
#define FEMC_PASSES_NVIDIA_NVIDIAPIPELINE_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassOptions.h"

namespace mlir::fem {

#define GEN_PASS_DECL
#include "passes/nvidia/NvidiaPasses.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/nvidia/NvidiaPasses.h.inc"

/// Options of the NVIDIA pipeline.
struct NvidiaOptions : public PassPipelineOptions<NvidiaOptions> {
  Option<int64_t> sm{*this, "sm",
                     llvm::cl::desc("Compute capability: 80 (A100) or 90 "
                                    "(H100)"),
                     llvm::cl::init(80)};
  Option<bool> tensorCores{
      *this, "tensor-cores",
      llvm::cl::desc("mma.sync for f16/bf16 reads where the head widths "
                     "allow it (false: CUDA cores only)"),
      llvm::cl::init(true)};
  Option<int64_t> mmaRows{
      *this, "mma-rows",
      llvm::cl::desc("Query rows per block of the tensor-core kernel: 64 or "
                     "128 (0: 64)"),
      llvm::cl::init(0)};
};

/// The module after `fem-tile` → a module of LLVM-dialect NVVM kernels with
/// the NVPTX triple and data layout (KernelAbi.h, section 1).
void buildNvidiaPipeline(OpPassManager &pm, const NvidiaOptions &options);

/// Registers the passes above and the pipeline `fem-tiled-to-nvvm`.
void registerNvidiaPasses();

} // namespace mlir::fem

#endif // FEMC_PASSES_NVIDIA_NVIDIAPIPELINE_H
