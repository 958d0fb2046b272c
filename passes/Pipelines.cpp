//===- Pipelines.cpp - named pass pipelines --------------------------------===//
#include "passes/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void mlir::fem::buildFEMToTiledPipeline(OpPassManager &pm,
                                        const CPUPipelineOptions &o) {
  pm.addPass(createFEMOutlineMixers());
  pm.addPass(createFEMExpandMixer());
  pm.addPass(createFEMFuseReads());
  pm.addPass(createCSEPass());
  FEMTileOptions tile;
  tile.tileQ = o.tileQ;
  tile.tileK = o.tileK;
  tile.vectorWidth = o.vectorWidth;
  tile.target = o.target;
  pm.addPass(createFEMTile(tile));
}

void mlir::fem::buildTiledToLoopsPipeline(OpPassManager &pm) {
  buildTiledToLoopsPipeline(pm, CPUPipelineOptions());
}

void mlir::fem::buildTiledToLoopsPipeline(OpPassManager &pm,
                                          const CPUPipelineOptions &o) {
  // Layer functions (fem-outline-mixers): helpers inlined, tensors to
  // buffers (the result is returned in a buffer the caller frees),
  // deallocation, linalg to loops. No-ops for kernels, whose
  // workgroup functions are already on buffers. This runs before the FEM
  // lowering, whose own scratch buffers are freed explicitly.
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(createInlinerPass());
  pm.addPass(createSymbolDCEPass());
  // A layer never writes into its caller's arrays (x, weights): an op whose
  // destination is an argument gets a copy instead of an in-place write.
  pm.addPass(createFEMLayerInputsReadOnly());
  // Aggregated linalg ops (linalg.softmax) as the generics they stand for.
  pm.addPass(createFEMDecomposeAggregates());
  // Element-wise arith/math ops on whole tensors (`arith.mulf %a, %b :
  // tensor<...>`, legal in a layer body) become linalg.generic, which
  // bufferizes and then runs as a loop stage; left as they are, one-shot
  // bufferization would stop with "op was not bufferized".
  pm.addPass(createConvertElementwiseToLinalgPass());
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  bufferization::buildBufferDeallocationPipeline(pm);
  // bufferization.clone (a layer that returns one of its arguments: the
  // caller frees the result, so it gets a copy) as alloc + copy; nothing
  // later lowers a clone.
  pm.addPass(createConvertBufferizationToMemRefPass());
  // Layer projections: packed, register-blocked matmul stages the glue
  // runs on the pool, f32 FMAs at the target's vector width or split bf16
  // on AMX tiles (the precision option).
  FEMLayerMatmulOptions matmul;
  matmul.target = o.target;
  matmul.precision = o.matmulPrecision;
  pm.addPass(createFEMLayerMatmul(matmul));
  pm.addPass(createConvertLinalgToLoopsPass());
  // Loop nests of layer bodies (the time-decay conditioning's scan, generics
  // left as loops) whose outer loops are parallel: stages on the pool too.
  pm.addPass(createFEMLayerLoopStages());
  // Reshapes of layer bodies (e.g. (B, T, H*d) <-> (B, T, H, d)) become
  // strided views the LLVM lowering takes.
  pm.addPass(createFEMLayerStridedMetadata());
  pm.addPass(createFEMLowerToCPU());
  // Copies into or out of strided windows (tensor.insert_slice) become
  // loops: the LLVM lowering would call memrefCopy, which no library links.
  pm.addPass(createFEMLowerCopies());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void mlir::fem::buildLoopsToLLVMPipeline(OpPassManager &pm) {
  pm.addPass(createLowerAffinePass());
  pm.addPass(createSCFToControlFlowPass());
  // AMX tile ops (the bf16 softmax read on AMX targets) and x86vector's
  // vdpbf16ps (the bf16 read on AVX512-BF16 dot products) lower here too.
  ConvertVectorToLLVMPassOptions vectorToLLVM;
  vectorToLLVM.amx = true;
  vectorToLLVM.x86Vector = true;
  pm.addPass(createConvertVectorToLLVMPass(vectorToLLVM));
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertMathToLLVMPass());
  // memref.alloc/dealloc become calls of _mlir_memref_to_llvm_alloc/_free,
  // which the driver renames per library and the C glue defines: a layer's
  // intermediates then come from the scratch blocks libfemrt keeps from
  // launch to launch (femrt_host::scratch_alloc), not from fresh pages.
  FinalizeMemRefToLLVMConversionPassOptions memrefToLLVM;
  memrefToLLVM.useGenericFunctions = true;
  pm.addPass(createFinalizeMemRefToLLVMConversionPass(memrefToLLVM));
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  pm.addPass(createCanonicalizerPass());
}

void mlir::fem::buildFEMToLoopsPipeline(OpPassManager &pm,
                                        const CPUPipelineOptions &o) {
  buildFEMToTiledPipeline(pm, o);
  buildTiledToLoopsPipeline(pm, o);
}

void mlir::fem::buildFEMToCPUPipeline(OpPassManager &pm,
                                      const CPUPipelineOptions &o) {
  buildFEMToLoopsPipeline(pm, o);
  buildLoopsToLLVMPipeline(pm);
}

void mlir::fem::registerFEMPipelines() {
  PassPipelineRegistration<CPUPipelineOptions>(
      "fem-to-loops",
      "Lower the fem dialect to scf/vector/memref loops: outline, expand, "
      "fuse and tile the reads for the CPU the target option names (default "
      "host); layer projections as matmul stages (stops before LLVM)",
      buildFEMToLoopsPipeline);
  PassPipelineRegistration<CPUPipelineOptions>(
      "fem-to-cpu",
      "Lower the fem dialect to the LLVM dialect for the CPU the target "
      "option names (default host): fem-to-loops, then the loops to LLVM",
      buildFEMToCPUPipeline);
}
