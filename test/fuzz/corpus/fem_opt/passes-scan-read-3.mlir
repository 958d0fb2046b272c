// ssm: no q/k; the state is N x Bc per stream (N dynamic here).
// ROUND-LABEL: func.func @ssm_wg
//       ROUND:   fem.scan_read ssm v(
//  ROUND-SAME:     delta(%{{.*}} : memref<?x?x32xf32>) A(%{{.*}} : memref<32x?xf32>) Bs(
// CHECK-LABEL: func.func @ssm_wg
//       CHECK:   memref.alloc(%{{.*}}) {alignment = 64 : i64} : memref<3x?x8xf32>
//   CHECK-NOT:   fem.
func.func @ssm_wg(%v: memref<?x?x2x16xf32>, %b: memref<32xf32>, %l: memref<?x?x2x16xf32>, %g: memref<?x?x2x16xf32>, %delta: memref<?x?x32xf32>, %A: memref<32x?xf32>, %Bs: memref<?x?x?xf32>, %Cs: memref<?x?x?xf32>, %D: memref<32xf32>, %o: memref<?x?x2x16xf32>, %x: index, %y: index, %z: index) {
  fem.scan_read ssm v(%v : memref<?x?x2x16xf32>) beta_raw(%b : memref<32xf32>) lam(%l : memref<?x?x2x16xf32>) gate(%g : memref<?x?x2x16xf32>) delta(%delta : memref<?x?x32xf32>) A(%A : memref<32x?xf32>) Bs(%Bs : memref<?x?x?xf32>) Cs(%Cs : memref<?x?x?xf32>) D(%D : memref<32xf32>) out(%o : memref<?x?x2x16xf32>) at(%x, %y, %z) {tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}
