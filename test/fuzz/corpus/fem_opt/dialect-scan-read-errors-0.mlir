// The scan form checks its operands against the prior table
// (dialect/Priors.h): required and forbidden operands, shapes, tiles.

func.func @gla_without_decay(%q: memref<?x?x2x8xf32>, %v: memref<?x?x2x8xf32>, %b: memref<16xf32>, %o: memref<?x?x2x8xf32>, %x: index) {
  // expected-error @+1 {{prior 'gla' requires operand 'decay'}}
  fem.scan_read gla q(%q : memref<?x?x2x8xf32>) k(%q : memref<?x?x2x8xf32>) v(%v : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%o : memref<?x?x2x8xf32>) gate(%o : memref<?x?x2x8xf32>) out(%o : memref<?x?x2x8xf32>) at(%x, %x, %x) {tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}
