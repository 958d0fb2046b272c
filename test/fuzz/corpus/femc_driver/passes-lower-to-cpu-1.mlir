// With dynamic shapes the scratch is sized by dk, dv and the group size only:
// no memref.dim of a time axis (dimension 1 in bthd) feeds an allocation.
// CHECK-LABEL: func.func @dynamic_wg
//  CHECK-SAME:   (%[[Q:[^:]*]]: memref<?x?x?x?xf32>, %[[K:[^:]*]]: memref<?x?x?x?xf32>, %[[V:[^:]*]]: memref<?x?x?x?xf32>
//   CHECK-DAG:   %[[C3:.*]] = arith.constant 3 : index
//   CHECK-DAG:   %[[DK:.*]] = memref.dim %[[Q]], %[[C3]]
//   CHECK-DAG:   %[[DV:.*]] = memref.dim %[[V]], %[[C3]]
//       CHECK:   memref.alloc(%{{.*}}) {alignment = 64 : i64} : memref<64x?xf32>
//       CHECK:   memref.alloc(%{{.*}}, %{{.*}}) {alignment = 64 : i64} : memref<?x192x?xf32>
func.func @dynamic(%q: tensor<?x?x?x?xf32>, %b: tensor<?xf32>) -> tensor<?x?x?x?xf32> {
  %0 = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%q : tensor<?x?x?x?xf32>)
      v(%q : tensor<?x?x?x?xf32>) beta_raw(%b : tensor<?xf32>) lam(%q : tensor<?x?x?x?xf32>)
      gate(%q : tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32>
  return %0 : tensor<?x?x?x?xf32>
}
