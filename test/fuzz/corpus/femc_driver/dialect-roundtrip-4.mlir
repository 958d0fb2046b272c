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
