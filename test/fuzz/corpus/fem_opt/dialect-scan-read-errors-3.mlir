func.func @aft_dk_not_dividing_dv(%q: memref<?x?x2x3xf32>, %v: memref<?x?x2x8xf32>, %b: memref<16xf32>, %x: index) {
  // expected-error @+1 {{prior 'aft' requires dk to divide dv, found dk = 3 and dv = 8}}
  fem.scan_read aft q(%q : memref<?x?x2x3xf32>) k(%q : memref<?x?x2x3xf32>) v(%v : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%v : memref<?x?x2x8xf32>) gate(%v : memref<?x?x2x8xf32>) out(%v : memref<?x?x2x8xf32>) at(%x, %x, %x) {tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}
