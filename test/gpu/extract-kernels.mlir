// RUN: fem-opt %s -split-input-file -verify-diagnostics -fem-gpu-extract-kernels | FileCheck %s

// The kernels' gpu.module becomes the module, with the NVPTX triple and
// data layout, ready for translateModuleToLLVMIR.
// CHECK:       module attributes {llvm.data_layout = "e-p6:32:32-i64:64-i128:128-i256:256-v16:16-v32:32-n16:32:64", llvm.target_triple = "nvptx64-nvidia-cuda"} {
// CHECK-NEXT:    llvm.mlir.global internal @smem
// CHECK-NEXT:    llvm.func @k_gpu(%{{.*}}: !llvm.ptr<1>) attributes {fem.gpu.block = [256, 1, 1], nvvm.kernel}
// CHECK-NOT:   gpu.module
module attributes {gpu.container_module} {
  gpu.module @fem_kernels {
    llvm.mlir.global internal @smem() {addr_space = 3 : i32} : !llvm.array<4 x f32>
    llvm.func @k_gpu(%p: !llvm.ptr<1>) attributes {fem.gpu.block = [256, 1, 1], nvvm.kernel} {
      llvm.return
    }
  }
}

// -----

// Host code left beside the kernels is an error.
module attributes {gpu.container_module} {
  // expected-error @+1 {{fem-gpu-extract-kernels: 'func.func' outside the kernels' gpu.module}}
  func.func @host() {
    return
  }
  gpu.module @fem_kernels {
  }
}

// -----

// So is anything the NVVM conversion did not lower.
module attributes {gpu.container_module} {
  gpu.module @fem_kernels {
    llvm.func @k_gpu(%x: f32) {
      // expected-error @+1 {{fem-gpu-extract-kernels: 'math.exp' was not lowered to the LLVM or NVVM dialect}}
      %0 = math.exp %x : f32
      llvm.return
    }
  }
}

// -----

// expected-error @+1 {{fem-gpu-extract-kernels: expected one gpu.module, found 0}}
module {
}
