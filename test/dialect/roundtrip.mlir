// RUN: fem-opt %s -split-input-file | fem-opt -split-input-file | FileCheck %s
// RUN: fem-opt %s -split-input-file -mlir-print-op-generic | fem-opt -split-input-file | FileCheck %s

// Dynamic batch and sequence extents round-trip through every op.
// CHECK-LABEL: func.func @expanded_softmax_dynamic
//       CHECK:   %[[P:.*]] = fem.prior softmax q(%{{.*}} : tensor<?x?x4x16xf32>) k(%{{.*}} : tensor<?x?x2x16xf32>) mask(%{{.*}} : tensor<?x?xi1>) {causal, scale = 2.500000e-01 : f64} -> !fem.prior<softmax, ?x4x?x?>
//       CHECK:   %[[C:.*]], %[[X:.*]], %[[M:.*]] = fem.tilt %{{.*}}, %{{.*}} mask(%{{.*}} : tensor<?x?xi1>) {cap = 3.000000e+01 : f64}
//       CHECK:   %[[MU:.*]] = fem.expect %[[P]], %[[C]]
//       CHECK:   %[[F:.*]] = fem.lse %[[P]], %[[X]], %[[M]], %{{.*}}
//       CHECK:   fem.gate %[[MU]], %[[F]], %{{.*}}, %{{.*}} : tensor<?x?x4x16xf32>
func.func @expanded_softmax_dynamic(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x2x16xf32>,
    %v: tensor<?x?x2x16xf32>, %beta_raw: tensor<64xf32>, %lam: tensor<?x?x4x16xf32>,
    %gate: tensor<?x?x4x16xf32>, %mask: tensor<?x?xi1>) -> tensor<?x?x4x16xf32> {
  %p = fem.prior softmax q(%q : tensor<?x?x4x16xf32>) k(%k : tensor<?x?x2x16xf32>)
      mask(%mask : tensor<?x?xi1>) {causal, scale = 0.25 : f64} -> !fem.prior<softmax, ?x4x?x?>
  %vt, %x, %m = fem.tilt %v, %beta_raw mask(%mask : tensor<?x?xi1>) {cap = 30.0 : f64}
      : tensor<?x?x2x16xf32>, tensor<64xf32>
      -> tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x4x16xf32>
  %mu = fem.expect %p, %vt : !fem.prior<softmax, ?x4x?x?>, tensor<?x?x4x16xf32> -> tensor<?x?x4x16xf32>
  %f = fem.lse %p, %x, %m, %beta_raw : !fem.prior<softmax, ?x4x?x?>, tensor<?x?x4x16xf32>,
      tensor<?x4x16xf32>, tensor<64xf32> -> tensor<?x?x4x16xf32>
  %out = fem.gate %mu, %f, %lam, %gate : tensor<?x?x4x16xf32>
  return %out : tensor<?x?x4x16xf32>
}

// -----

// CHECK-LABEL: func.func @mixer_softmax_bhtd_tiles
//       CHECK:   fem.mixer softmax q(%{{.*}} : tensor<2x4x64x16xf32>) {{.*}} {layout = #fem.layout<bhtd>, tiles = #fem.tiles<q = 32, k = 64, vec = 8>} -> tensor<2x4x64x16xf32>
func.func @mixer_softmax_bhtd_tiles(%q: tensor<2x4x64x16xf32>, %k: tensor<2x4x64x16xf32>,
    %v: tensor<2x4x64x16xf32>, %b: tensor<64xf32>, %l: tensor<2x4x64x16xf32>,
    %g: tensor<2x4x64x16xf32>) -> tensor<2x4x64x16xf32> {
  %out = fem.mixer softmax q(%q : tensor<2x4x64x16xf32>) k(%k : tensor<2x4x64x16xf32>)
      v(%v : tensor<2x4x64x16xf32>) beta_raw(%b : tensor<64xf32>) lam(%l : tensor<2x4x64x16xf32>)
      gate(%g : tensor<2x4x64x16xf32>)
      {layout = #fem.layout<bhtd>, tiles = #fem.tiles<q = 32, k = 64, vec = 8>} -> tensor<2x4x64x16xf32>
  return %out : tensor<2x4x64x16xf32>
}

// -----

// CHECK-LABEL: func.func @mixer_every_prior
//       CHECK:   fem.mixer linear
//       CHECK:   fem.mixer gla {{.*}} decay(%{{.*}} : tensor<?x?x4xf32>)
//       CHECK:   fem.mixer aft
//       CHECK:   fem.mixer ssm v({{.*}}) {{.*}} delta(%{{.*}} : tensor<?x?x64xf32>) A(%{{.*}} : tensor<64x8xf32>) Bs(%{{.*}} : tensor<?x?x8xf32>) Cs(%{{.*}} : tensor<?x?x8xf32>) D(%{{.*}} : tensor<64xf32>)
func.func @mixer_every_prior(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x4x16xf32>,
    %v: tensor<?x?x4x16xf32>, %b: tensor<64xf32>, %l: tensor<?x?x4x16xf32>,
    %g: tensor<?x?x4x16xf32>, %decay: tensor<?x?x4xf32>, %delta: tensor<?x?x64xf32>,
    %A: tensor<64x8xf32>, %Bs: tensor<?x?x8xf32>, %Cs: tensor<?x?x8xf32>, %D: tensor<64xf32>)
    -> (tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>) {
  %0 = fem.mixer linear q(%q : tensor<?x?x4x16xf32>) k(%k : tensor<?x?x4x16xf32>)
      v(%v : tensor<?x?x4x16xf32>) beta_raw(%b : tensor<64xf32>) lam(%l : tensor<?x?x4x16xf32>)
      gate(%g : tensor<?x?x4x16xf32>) {causal} -> tensor<?x?x4x16xf32>
  %1 = fem.mixer gla q(%q : tensor<?x?x4x16xf32>) k(%k : tensor<?x?x4x16xf32>)
      v(%v : tensor<?x?x4x16xf32>) beta_raw(%b : tensor<64xf32>) lam(%l : tensor<?x?x4x16xf32>)
      gate(%g : tensor<?x?x4x16xf32>) decay(%decay : tensor<?x?x4xf32>) -> tensor<?x?x4x16xf32>
  %2 = fem.mixer aft q(%q : tensor<?x?x4x16xf32>) k(%k : tensor<?x?x4x16xf32>)
      v(%v : tensor<?x?x4x16xf32>) beta_raw(%b : tensor<64xf32>) lam(%l : tensor<?x?x4x16xf32>)
      gate(%g : tensor<?x?x4x16xf32>) -> tensor<?x?x4x16xf32>
  %3 = fem.mixer ssm v(%v : tensor<?x?x4x16xf32>) beta_raw(%b : tensor<64xf32>)
      lam(%l : tensor<?x?x4x16xf32>) gate(%g : tensor<?x?x4x16xf32>)
      delta(%delta : tensor<?x?x64xf32>) A(%A : tensor<64x8xf32>) Bs(%Bs : tensor<?x?x8xf32>)
      Cs(%Cs : tensor<?x?x8xf32>) D(%D : tensor<64xf32>) -> tensor<?x?x4x16xf32>
  return %0, %1, %2, %3 : tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>
}

// -----

// f16 and bf16 element types are accepted (f32 accumulation is the lowering's job).
// CHECK-LABEL: func.func @half_types
//       CHECK:   fem.mixer softmax {{.*}} -> tensor<1x8x2x8xf16>
//       CHECK:   fem.mixer softmax {{.*}} -> tensor<1x8x2x8xbf16>
func.func @half_types(%h: tensor<1x8x2x8xf16>, %bh: tensor<16xf16>,
                      %g: tensor<1x8x2x8xbf16>, %bg: tensor<16xbf16>)
    -> (tensor<1x8x2x8xf16>, tensor<1x8x2x8xbf16>) {
  %0 = fem.mixer softmax q(%h : tensor<1x8x2x8xf16>) k(%h : tensor<1x8x2x8xf16>)
      v(%h : tensor<1x8x2x8xf16>) beta_raw(%bh : tensor<16xf16>) lam(%h : tensor<1x8x2x8xf16>)
      gate(%h : tensor<1x8x2x8xf16>) -> tensor<1x8x2x8xf16>
  %1 = fem.mixer softmax q(%g : tensor<1x8x2x8xbf16>) k(%g : tensor<1x8x2x8xbf16>)
      v(%g : tensor<1x8x2x8xbf16>) beta_raw(%bg : tensor<16xbf16>) lam(%g : tensor<1x8x2x8xbf16>)
      gate(%g : tensor<1x8x2x8xbf16>) -> tensor<1x8x2x8xbf16>
  return %0, %1 : tensor<1x8x2x8xf16>, tensor<1x8x2x8xbf16>
}

// -----

// The fused and tiled forms round-trip too.
// CHECK-LABEL: func.func @fused_and_tiled
//       CHECK:   fem.fused_read %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {cap = 2.000000e+01 : f64} : !fem.prior<softmax, ?x4x?x?>
//       CHECK:   fem.tile_read softmax q(%{{.*}} : memref<?x?x4x16xf32>) {{.*}} out(%{{.*}} : memref<?x?x4x16xf32>) at(%{{.*}}, %{{.*}}, %{{.*}}) {causal, tiles = #fem.tiles<q = 32, k = 64, vec = 8>}
func.func @fused_and_tiled(%q: tensor<?x?x4x16xf32>, %v: tensor<?x?x4x16xf32>,
    %b: tensor<64xf32>, %mq: memref<?x?x4x16xf32>, %mb: memref<64xf32>, %i: index)
    -> tensor<?x?x4x16xf32> {
  %p = fem.prior softmax q(%q : tensor<?x?x4x16xf32>) k(%q : tensor<?x?x4x16xf32>) {causal}
      -> !fem.prior<softmax, ?x4x?x?>
  %o = fem.fused_read %p, %v, %b, %v, %v {cap = 20.0 : f64} : !fem.prior<softmax, ?x4x?x?>,
      tensor<?x?x4x16xf32>, tensor<64xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>
      -> tensor<?x?x4x16xf32>
  fem.tile_read softmax q(%mq : memref<?x?x4x16xf32>) k(%mq : memref<?x?x4x16xf32>)
      v(%mq : memref<?x?x4x16xf32>) beta_raw(%mb : memref<64xf32>) lam(%mq : memref<?x?x4x16xf32>)
      gate(%mq : memref<?x?x4x16xf32>) out(%mq : memref<?x?x4x16xf32>) at(%i, %i, %i)
      {causal, tiles = #fem.tiles<q = 32, k = 64, vec = 8>}
  return %o : tensor<?x?x4x16xf32>
}
