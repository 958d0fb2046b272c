func.func @chunk_not_multiple_of_vec(%q: memref<?x?x2x8xf32>, %b: memref<16xf32>, %x: index) {
  // expected-error @+1 {{tiles #fem.tiles<q = 12, k = 8, vec = 8>: chunk (tile-q) of prior 'linear' must be a positive multiple of vec = 8 up to 512, found 12}}
  fem.scan_read linear q(%q : memref<?x?x2x8xf32>) k(%q : memref<?x?x2x8xf32>) v(%q : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%q : memref<?x?x2x8xf32>) gate(%q : memref<?x?x2x8xf32>) out(%q : memref<?x?x2x8xf32>) at(%x, %x, %x) {tiles = #fem.tiles<q = 12, k = 8, vec = 8>}
  return
}
