// RUN: fem-opt %s -split-input-file -verify-diagnostics -pass-pipeline='builtin.module(gpu.module(fem-gpu-expand-math))' | FileCheck %s

// exp, log and log1p become f32 polynomials; fma, sqrt and exp2 become calls
// of the LLVM intrinsics the NVPTX back end selects to one instruction. No
// math op (and so no libdevice call) is left.
// CHECK-LABEL: gpu.func @k
//   CHECK-NOT:   math.
//       CHECK:   llvm.call_intrinsic "llvm.fma.f32"
//       CHECK:   llvm.call_intrinsic "llvm.sqrt.f32"
//       CHECK:   llvm.call_intrinsic "llvm.exp2.f32"
//   CHECK-NOT:   math.
//       CHECK:   gpu.return
gpu.module @m {
  gpu.func @k(%x: f32, %p: !llvm.ptr<1>) kernel {
    %0 = math.exp %x : f32
    %1 = math.log %0 : f32
    %2 = math.log1p %1 : f32
    %3 = math.sqrt %2 : f32
    %4 = math.exp2 %3 : f32
    llvm.store %4, %p : f32, !llvm.ptr<1>
    gpu.return
  }
}

// -----

gpu.module @m {
  gpu.func @k(%x: f32, %y: f32, %p: !llvm.ptr<1>) kernel {
    // expected-error @+1 {{fem-gpu-expand-math: 'math.powf' has no libdevice-free lowering}}
    %0 = math.powf %x, %y : f32
    llvm.store %0, %p : f32, !llvm.ptr<1>
    gpu.return
  }
}
