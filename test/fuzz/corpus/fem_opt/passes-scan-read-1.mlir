// gla reads its decay logits (B,T,H) and exponentiates log-decay
// differences only.
// ROUND-LABEL: func.func @gla_wg
//       ROUND:   fem.scan_read gla {{.*}} decay(%{{.*}} : memref<?x?x2xf32>)
// CHECK-LABEL: func.func @gla_wg
//       CHECK:   math.exp
//   CHECK-NOT:   fem.
func.func @gla_wg(%q: memref<?x?x2x8xf32>, %k: memref<?x?x2x8xf32>, %v: memref<?x?x2x16xf32>, %b: memref<32xf32>, %l: memref<?x?x2x16xf32>, %g: memref<?x?x2x16xf32>, %d: memref<?x?x2xf32>, %o: memref<?x?x2x16xf32>, %x: index, %y: index, %z: index) {
  fem.scan_read gla q(%q : memref<?x?x2x8xf32>) k(%k : memref<?x?x2x8xf32>) v(%v : memref<?x?x2x16xf32>) beta_raw(%b : memref<32xf32>) lam(%l : memref<?x?x2x16xf32>) gate(%g : memref<?x?x2x16xf32>) decay(%d : memref<?x?x2xf32>) out(%o : memref<?x?x2x16xf32>) at(%x, %y, %z) {tiles = #fem.tiles<q = 32, k = 16, vec = 8>}
  return
}
