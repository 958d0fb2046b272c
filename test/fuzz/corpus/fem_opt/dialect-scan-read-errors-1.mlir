func.func @linear_with_decay(%q: memref<?x?x2x8xf32>, %b: memref<16xf32>, %d: memref<?x?x2xf32>, %x: index) {
  // expected-error @+1 {{operand 'decay' is not used by prior 'linear'}}
  fem.scan_read linear q(%q : memref<?x?x2x8xf32>) k(%q : memref<?x?x2x8xf32>) v(%q : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%q : memref<?x?x2x8xf32>) gate(%q : memref<?x?x2x8xf32>) decay(%d : memref<?x?x2xf32>) out(%q : memref<?x?x2x8xf32>) at(%x, %x, %x) {tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}
