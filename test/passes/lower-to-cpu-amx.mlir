// RUN: fem-opt %s -split-input-file -fem-to-loops="target=avx512" | FileCheck %s
// RUN: fem-opt %s -split-input-file -fem-to-cpu="target=avx512" | FileCheck %s --check-prefix=LLVM

// With AMX-BF16 among the module's target features (femc stamps them from
// --target), a bf16 softmax read takes the AMX emitter: both contractions
// are amx.tile_mulf on tiles loaded from scratch, accumulators never cross
// a loop, P is rounded to bf16 (arith.truncf) and written in VNNI pairs.
// No buffer is sized by T (4096): the scratch is sized by the tiles and d.
// CHECK-LABEL: func.func @amx_wg
//   CHECK-NOT:   memref.alloc{{.*}}4096
//       CHECK:   amx.tile_zero : !amx.tile<16x16xf32>
//       CHECK:   amx.tile_load {{.*}} into !amx.tile<16x32xbf16>
//       CHECK:   amx.tile_mulf {{.*}} : !amx.tile<16x32xbf16>, !amx.tile<16x32xbf16>, !amx.tile<16x16xf32>
//       CHECK:   amx.tile_store
//       CHECK:   arith.truncf {{.*}} : vector<16xf32> to vector<16xbf16>
//       CHECK:   amx.tile_mulf
//       CHECK:   memref.dealloc
//   CHECK-NOT:   fem.tile_read
// The amx ops become LLVM's AMX intrinsics.
// LLVM-LABEL: llvm.func @amx_wg
// LLVM: llvm.call_intrinsic "llvm.x86.tdpbf16ps.internal"
module attributes {fem.target_features = "+avx512f,+avx512bf16,+amx-tile,+amx-bf16"} {
func.func @amx(%q: tensor<1x4096x4x64xbf16>, %b: tensor<256xbf16>) -> tensor<1x4096x4x64xbf16> {
  %0 = fem.mixer softmax q(%q : tensor<1x4096x4x64xbf16>) k(%q : tensor<1x4096x4x64xbf16>)
      v(%q : tensor<1x4096x4x64xbf16>) beta_raw(%b : tensor<256xbf16>) lam(%q : tensor<1x4096x4x64xbf16>)
      gate(%q : tensor<1x4096x4x64xbf16>) {causal} -> tensor<1x4096x4x64xbf16>
  return %0 : tensor<1x4096x4x64xbf16>
}
}

// -----

// Without AMX among the target features the same read takes the portable
// bf16 path (loads widen to f32, vector FMAs).
// CHECK-LABEL: func.func @no_amx_wg
//   CHECK-NOT:   amx.
//       CHECK:   vector.fma
//   CHECK-NOT:   amx.
module attributes {fem.target_features = "+avx512f,+avx512bf16"} {
func.func @no_amx(%q: tensor<1x4096x4x64xbf16>, %b: tensor<256xbf16>) -> tensor<1x4096x4x64xbf16> {
  %0 = fem.mixer softmax q(%q : tensor<1x4096x4x64xbf16>) k(%q : tensor<1x4096x4x64xbf16>)
      v(%q : tensor<1x4096x4x64xbf16>) beta_raw(%b : tensor<256xbf16>) lam(%q : tensor<1x4096x4x64xbf16>)
      gate(%q : tensor<1x4096x4x64xbf16>) {causal} -> tensor<1x4096x4x64xbf16>
  return %0 : tensor<1x4096x4x64xbf16>
}
}

// -----

// f32 reads never take tiles, whatever the target has.
// CHECK-LABEL: func.func @f32_wg
//   CHECK-NOT:   amx.
//       CHECK:   vector.fma
module attributes {fem.target_features = "+avx512f,+avx512bf16,+amx-tile,+amx-bf16"} {
func.func @f32(%q: tensor<1x64x4x64xf32>, %b: tensor<256xf32>) -> tensor<1x64x4x64xf32> {
  %0 = fem.mixer softmax q(%q : tensor<1x64x4x64xf32>) k(%q : tensor<1x64x4x64xf32>)
      v(%q : tensor<1x64x4x64xf32>) beta_raw(%b : tensor<256xf32>) lam(%q : tensor<1x64x4x64xf32>)
      gate(%q : tensor<1x64x4x64xf32>) {causal} -> tensor<1x64x4x64xf32>
  return %0 : tensor<1x64x4x64xf32>
}
}
