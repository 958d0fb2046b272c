// aft gathers the q/k channel j mod dk of every value channel.
// CHECK-LABEL: func.func @aft_wg
//       CHECK:   vector.gather
//   CHECK-NOT:   fem.
func.func @aft_wg(%q: memref<?x?x?x4xf32>, %k: memref<?x?x?x4xf32>, %v: memref<?x?x?x16xf32>, %b: memref<?xf32>, %l: memref<?x?x?x16xf32>, %g: memref<?x?x?x16xf32>, %o: memref<?x?x?x16xf32>, %x: index, %y: index, %z: index) {
  fem.scan_read aft q(%q : memref<?x?x?x4xf32>) k(%k : memref<?x?x?x4xf32>) v(%v : memref<?x?x?x16xf32>) beta_raw(%b : memref<?xf32>) lam(%l : memref<?x?x?x16xf32>) gate(%g : memref<?x?x?x16xf32>) out(%o : memref<?x?x?x16xf32>) at(%x, %y, %z) {layout = #fem.layout<bhtd>, tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}
