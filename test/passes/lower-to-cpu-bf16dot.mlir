// RUN: fem-opt %s -split-input-file -fem-to-loops="target=avx512" | FileCheck %s
// RUN: fem-opt %s -split-input-file -fem-to-cpu="target=avx512" | FileCheck %s --check-prefix=LLVM
// 8-lane vectors (--vec=8) keep the f32 read, whatever the features.
// RUN: fem-opt %s -split-input-file -fem-to-loops="target=avx512 vec=8" | FileCheck %s --check-prefix=VEC8
// VEC8-NOT: x86vector.
// VEC8: vector.fma
// VEC8-NOT: x86vector.

// With AVX512-BF16 and femc's opt-in fem-bf16-dot among the module's target
// features (femc stamps them from --target=<cpu>+bf16dot), a bf16 softmax
// read takes the dot-product emitter (passes/cpu/ReadSoftmaxBf16.cpp): both
// contractions are x86vector.avx512.dot on bf16 pairs packed in i32 scratch,
// the panel and P rounded to bf16 (arith.truncf) and interleaved in pairs.
// No buffer is sized by T (4096): the scratch is sized by the tiles and d.
// CHECK-LABEL: func.func @dot_wg
//   CHECK-NOT:   memref.alloc{{.*}}4096
//       CHECK:   memref.alloc{{.*}} : memref<{{.*}}xi32>
//       CHECK:   x86vector.avx512.dot {{.*}} : vector<32xbf16> -> vector<16xf32>
//       CHECK:   arith.truncf {{.*}} : vector<16xf32> to vector<16xbf16>
//       CHECK:   x86vector.avx512.dot {{.*}} : vector<32xbf16> -> vector<16xf32>
//       CHECK:   memref.dealloc
//   CHECK-NOT:   fem.tile_read
// The dot products become LLVM's AVX512-BF16 intrinsic.
// LLVM-LABEL: llvm.func @dot_wg
// LLVM: llvm.call_intrinsic "llvm.x86.avx512bf16.dpbf16ps.512"
module attributes {fem.target_features = "+avx512f,+avx512bf16,+fem-bf16-dot"} {
func.func @dot(%q: tensor<1x4096x4x64xbf16>, %b: tensor<256xbf16>) -> tensor<1x4096x4x64xbf16> {
  %0 = fem.mixer softmax q(%q : tensor<1x4096x4x64xbf16>) k(%q : tensor<1x4096x4x64xbf16>)
      v(%q : tensor<1x4096x4x64xbf16>) beta_raw(%b : tensor<256xbf16>) lam(%q : tensor<1x4096x4x64xbf16>)
      gate(%q : tensor<1x4096x4x64xbf16>) {causal} -> tensor<1x4096x4x64xbf16>
  return %0 : tensor<1x4096x4x64xbf16>
}
}

// -----

// The opt-in without AVX512-BF16 (no instruction to use) and AVX512-BF16
// without the opt-in both keep the f32 read (widened loads, vector FMAs).
// CHECK-LABEL: func.func @no_bf16_wg
//   CHECK-NOT:   x86vector.
//       CHECK:   vector.fma
//   CHECK-NOT:   x86vector.
module attributes {fem.target_features = "+avx512f,+fem-bf16-dot"} {
func.func @no_bf16(%q: tensor<1x256x4x64xbf16>, %b: tensor<256xbf16>) -> tensor<1x256x4x64xbf16> {
  %0 = fem.mixer softmax q(%q : tensor<1x256x4x64xbf16>) k(%q : tensor<1x256x4x64xbf16>)
      v(%q : tensor<1x256x4x64xbf16>) beta_raw(%b : tensor<256xbf16>) lam(%q : tensor<1x256x4x64xbf16>)
      gate(%q : tensor<1x256x4x64xbf16>) {causal} -> tensor<1x256x4x64xbf16>
  return %0 : tensor<1x256x4x64xbf16>
}
}

// -----

// CHECK-LABEL: func.func @no_opt_in_wg
//   CHECK-NOT:   x86vector.
//       CHECK:   vector.fma
//   CHECK-NOT:   x86vector.
module attributes {fem.target_features = "+avx512f,+avx512bf16"} {
func.func @no_opt_in(%q: tensor<1x256x4x64xbf16>, %b: tensor<256xbf16>) -> tensor<1x256x4x64xbf16> {
  %0 = fem.mixer softmax q(%q : tensor<1x256x4x64xbf16>) k(%q : tensor<1x256x4x64xbf16>)
      v(%q : tensor<1x256x4x64xbf16>) beta_raw(%b : tensor<256xbf16>) lam(%q : tensor<1x256x4x64xbf16>)
      gate(%q : tensor<1x256x4x64xbf16>) {causal} -> tensor<1x256x4x64xbf16>
  return %0 : tensor<1x256x4x64xbf16>
}
}

// -----

// f32 reads never take the dot products, whatever the target has.
// CHECK-LABEL: func.func @f32_wg
//   CHECK-NOT:   x86vector.
//       CHECK:   vector.fma
module attributes {fem.target_features = "+avx512f,+avx512bf16,+fem-bf16-dot"} {
func.func @f32(%q: tensor<1x64x4x64xf32>, %b: tensor<256xf32>) -> tensor<1x64x4x64xf32> {
  %0 = fem.mixer softmax q(%q : tensor<1x64x4x64xf32>) k(%q : tensor<1x64x4x64xf32>)
      v(%q : tensor<1x64x4x64xf32>) beta_raw(%b : tensor<256xf32>) lam(%q : tensor<1x64x4x64xf32>)
      gate(%q : tensor<1x64x4x64xf32>) {causal} -> tensor<1x64x4x64xf32>
  return %0 : tensor<1x64x4x64xf32>
}
}
