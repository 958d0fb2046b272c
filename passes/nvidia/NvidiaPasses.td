//===- NvidiaPasses.td - fem passes for NVIDIA GPUs ---------*- tablegen -*-===//
#ifndef FEM_NVIDIA_PASSES_TD
#define FEM_NVIDIA_PASSES_TD

include "mlir/Pass/PassBase.td"

def FEMLowerToGPU : Pass<"fem-lower-to-gpu", "::mlir::ModuleOp"> {
  let summary = "Lower the workgroup functions of fem-tile to gpu.func kernels";
  let description = [{
    Replaces every workgroup function `@K_wg` holding a softmax
    `fem.tile_read` with a kernel `@K_gpu` in the `gpu.module @fem_kernels`:
    one block per (query tile, query head, batch), the online-softmax FEM
    read of docs/gpu.md in gpu/scf/arith/math/memref ops and LLVM pointer
    loads (the kernel ABI of passes/nvidia/KernelAbi.h: plain global
    pointers, then the extents B, T, S, H, Hkv). The shift pre-pass and the
    gate epilogue are fused into the kernel. The launch facts are stamped on
    the kernel as `fem.gpu.grid`, `fem.gpu.block`, `fem.gpu.shared_bytes`,
    `fem.gpu.static_shared_bytes`, `fem.gpu.arch` and `fem.gpu.dtype`.
    f16/bf16 reads with dk % 16 == 0, dv % 8 == 0 and dk, dv <= 128 get the
    tensor-core kernel (4 or, with `mma-rows=128`, 8 warps of 16 query
    rows, mma.sync.m16n8k16 with f32 accumulators); every other read, or `tensor-cores=false`, gets the
    f32 CUDA-core kernel (256 threads).
    Scan-family reads (linear, gla, aft, ssm) and layer functions are
    rejected with a located error: they have no GPU lowering yet.
  }];
  let options = [
    Option<"arch", "sm", "int64_t", /*default=*/"80",
           "Compute capability the kernels are built for: 80 or 90">,
    Option<"tensorCores", "tensor-cores", "bool", /*default=*/"true",
           "f16/bf16 reads with dk % 16 == 0, dv % 8 == 0 and dk, dv <= 128 "
           "use mma.sync (false: the f32 CUDA-core kernel for every dtype)">,
    Option<"mmaRows", "mma-rows", "int64_t", /*default=*/"0",
           "Query rows per block of the tensor-core kernel: 64 (4 warps) or "
           "128 (8 warps: each key tile's panel shared by twice the rows); "
           "0 picks 64. A read that gets the f32 kernel refuses a nonzero "
           "value">,
  ];
  let dependentDialects = ["::mlir::gpu::GPUDialect",
                           "::mlir::LLVM::LLVMDialect",
                           "::mlir::NVVM::NVVMDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect"];
}

def FEMGPUExpandMath : Pass<"fem-gpu-expand-math", "::mlir::gpu::GPUModuleOp"> {
  let summary = "Expand math ops of GPU kernels without libdevice";
  let description = [{
    Rewrites exp, log, log1p (and expm1, tanh, ...) in a `gpu.module` into
    MLIR's f32 polynomial approximations, and the math ops the NVPTX back
    end has instructions for (fma, sqrt, absf, exp2) into LLVM intrinsics,
    so that `convert-gpu-to-nvvm` emits no `__nv_*` libdevice call and the
    PTX needs no library. Any other math op left is an error.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::vector::VectorDialect"];
}

def FEMGPUExtractKernels : Pass<"fem-gpu-extract-kernels", "::mlir::ModuleOp"> {
  let summary = "Hoist the NVVM kernels of gpu.module @fem_kernels into the module";
  let description = [{
    After `convert-gpu-to-nvvm`, moves the contents of the kernels'
    `gpu.module` into the top-level module, drops the `gpu.container_module`
    attribute and sets `llvm.target_triple` (nvptx64-nvidia-cuda) and
    `llvm.data_layout`, so the module translates to LLVM IR for the NVPTX
    back end as it is. Fails when anything but LLVM-dialect ops remains.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

#endif // FEM_NVIDIA_PASSES_TD
