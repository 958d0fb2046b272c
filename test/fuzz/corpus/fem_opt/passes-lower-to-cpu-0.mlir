// The tiled read becomes one loop nest: a pre-pass over the keys for the
// shift, a loop over key tiles with FMA contractions and exp, and the
// epilogue with the log restore. No buffer grows with T (T = 4096 here):
// every allocation is sized by the tiles (q = 192, k = 64), dk and dv.
// CHECK-LABEL: func.func @static_long_wg
//   CHECK-NOT:   memref.alloc{{.*}}4096
//   CHECK-NOT:   memref.alloc{{.*}}16777216
//       CHECK:   memref.alloc() {alignment = 64 : i64} : memref<64x128xf32>
//       CHECK:   scf.for
//       CHECK:     vector.fma
//   CHECK-NOT:   memref.alloc{{.*}}4096
//       CHECK:   memref.dealloc
//   CHECK-NOT:   fem.
// exp, log and log1p become polynomials: no libm calls in the kernel.
// NOLIBM-NOT: math.exp
// NOLIBM-NOT: math.log
// LLVM-NOT: llvm.call @{{.*}}exp
// LLVM-LABEL: llvm.func @static_long_wg
// LLVM: llvm.intr.fma
// LLVM-LABEL: llvm.func @_mlir_ciface_static_long_wg
func.func @static_long(%q: tensor<1x4096x4x64xf32>, %b: tensor<256xf32>) -> tensor<1x4096x4x64xf32> {
  %0 = fem.mixer softmax q(%q : tensor<1x4096x4x64xf32>) k(%q : tensor<1x4096x4x64xf32>)
      v(%q : tensor<1x4096x4x64xf32>) beta_raw(%b : tensor<256xf32>) lam(%q : tensor<1x4096x4x64xf32>)
      gate(%q : tensor<1x4096x4x64xf32>) {causal} -> tensor<1x4096x4x64xf32>
  return %0 : tensor<1x4096x4x64xf32>
}
