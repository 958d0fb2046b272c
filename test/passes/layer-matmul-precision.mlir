// fem-layer-matmul's options: `precision` (auto, f32, bf16x3, bf16x6) and
// `target` (the f32 stages' vector width from defaultVectorWidth, whatever
// the module's features say).
// RUN: fem-opt %s -split-input-file -verify-diagnostics -fem-layer-matmul=precision=bf16x6
// RUN: fem-opt %s -split-input-file -verify-diagnostics -fem-layer-matmul=precision=bf16x3
// RUN: fem-opt %s -split-input-file -fem-layer-matmul="precision=f32 target=avx2" | FileCheck %s --check-prefix=AVX2
// RUN: fem-opt %s -split-input-file -fem-layer-matmul="target=avx512" | FileCheck %s --check-prefix=AVX512
// RUN: not fem-opt %s -fem-layer-matmul=precision=half 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: not fem-opt %s -fem-layer-matmul=target=sse 2>&1 | FileCheck %s --check-prefix=TARGET

// UNKNOWN: fem-layer-matmul: unknown matmul precision 'half', expected auto, f32, bf16x3 or bf16x6
// TARGET: fem-layer-matmul: unknown target 'sse', expected host, avx2, avx512 or generic

// A module whose target has no AMX (its features name AVX-512 only): the
// split modes are refused; f32 gets the width `target` names (avx2: 8
// lanes, panels of 16) even though the features say AVX-512, and auto is f32.
// AVX2-LABEL: func.func @linear_layer
// AVX2: memref.alloc({{.*}}) {alignment = 64 : i64} : memref<?x?x16xf32>
// AVX2: call @linear_mm_pack_nt_run
// AVX512-LABEL: func.func @linear_layer
// AVX512: memref.alloc({{.*}}) {alignment = 64 : i64} : memref<?x?x32xf32>
// AVX512: call @linear_mm_pack_nt_run
#x = affine_map<(m, n, k) -> (m, k)>
#w = affine_map<(m, n, k) -> (n, k)>
#y = affine_map<(m, n, k) -> (m, n)>
// expected-error @+1 {{needs AMX-BF16 tiles (amx-tile, amx-bf16), which the module's target features do not enable; use f32}}
module attributes {fem.target_features = "+avx512f,+avx2"} {
func.func @linear_layer(%a: memref<?x256xf32>, %w: memref<128x256xf32>, %c: memref<?x128xf32>)
    attributes {fem.layer = "linear"} {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%a, %w : memref<?x256xf32>, memref<128x256xf32>) outs(%c : memref<?x128xf32>) {
    ^bb0(%p: f32, %q: f32, %acc: f32):
      %m = arith.mulf %p, %q : f32
      %s = arith.addf %acc, %m : f32
      linalg.yield %s : f32
  }
  return
}
}
