// A kernel-level function becomes its workgroup function on buffers.
// CHECK-LABEL: func.func @kernel_wg
//  CHECK-SAME:   (%[[Q:.*]]: memref<?x?x4x16xf32>, %{{.*}}: memref<?x?x4x16xf32>, %{{.*}}: memref<?x?x4x16xf32>, %{{.*}}: memref<64xf32>, %{{.*}}: memref<?x?x4x16xf32>, %{{.*}}: memref<?x?x4x16xf32>, %[[MASK:.*]]: memref<?x?xi8>, %[[OUT:.*]]: memref<?x?x4x16xf32>, %[[X:.*]]: index, %[[Y:.*]]: index, %[[Z:.*]]: index)
//  CHECK-SAME:   attributes {fem.arg_names = ["q", "k", "v", "beta_raw", "lam", "gate", "mask", "out"], fem.kernel = "kernel", llvm.emit_c_interface}
//       CHECK:   fem.tile_read softmax q(%[[Q]] : {{.*}}) {{.*}} mask(%[[MASK]] : memref<?x?xi8>) out(%[[OUT]] : {{.*}}) at(%[[X]], %[[Y]], %[[Z]]) {causal, tiles = #fem.tiles<q = 192, k = 64, vec = 8>}
//   CHECK-NOT:   func.func @kernel(
func.func @kernel(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x4x16xf32>, %v: tensor<?x?x4x16xf32>,
    %b: tensor<64xf32>, %l: tensor<?x?x4x16xf32>, %g: tensor<?x?x4x16xf32>, %m: tensor<?x?xi1>)
    -> tensor<?x?x4x16xf32> {
  %0 = fem.mixer softmax q(%q : tensor<?x?x4x16xf32>) k(%k : tensor<?x?x4x16xf32>)
      v(%v : tensor<?x?x4x16xf32>) beta_raw(%b : tensor<64xf32>) lam(%l : tensor<?x?x4x16xf32>)
      gate(%g : tensor<?x?x4x16xf32>) mask(%m : tensor<?x?xi1>) {causal} -> tensor<?x?x4x16xf32>
  return %0 : tensor<?x?x4x16xf32>
}
